//! States kept as words: an enum whose variants map to their stored (or submitted) strings in
//! one table, read and written by SQLite, serde and forms alike, so no other code spells them.

/// A word that names no state of the enum (`what`).
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} '{word}'")]
pub struct UnknownWord {
    pub what: &'static str,
    pub word: String,
}

/// Declares an enum of `Variant = "word"` pairs with `as_str`, `parse`/`FromStr`, `Display`,
/// comparison with `&str`, serde and diesel `Text` mappings, all from that one list. An unknown word read from the database is
/// a deserialisation error, never a silent default.
macro_rules! stored_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, diesel::AsExpression, diesel::FromSqlRow)]
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every state, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every stored word, in declaration order.
            pub const WORDS: &'static [&'static str] = &[$($word),+];

            /// The stored word.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }

            /// The state a stored word names.
            pub fn parse(word: &str) -> Option<$name> {
                match word {
                    $($word => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::db::stored::UnknownWord;

            fn from_str(word: &str) -> Result<Self, Self::Err> {
                $name::parse(word)
                    .ok_or_else(|| $crate::db::stored::UnknownWord { what: stringify!($name), word: word.to_string() })
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let word = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                $name::parse(&word).ok_or_else(|| serde::de::Error::unknown_variant(&word, $name::WORDS))
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::sqlite::Sqlite> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::sqlite::Sqlite>,
            ) -> diesel::serialize::Result {
                out.set_value(self.as_str());
                Ok(diesel::serialize::IsNull::No)
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::sqlite::Sqlite> for $name {
            fn from_sql(value: diesel::sqlite::SqliteValue<'_, '_, '_>) -> diesel::deserialize::Result<Self> {
                let word =
                    <String as diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::sqlite::Sqlite>>::from_sql(
                        value,
                    )?;
                $name::parse(&word)
                    .ok_or_else(|| format!("unknown {} '{word}' in the database", stringify!($name)).into())
            }
        }
    };
}

pub(crate) use stored_enum;

/// Asserts that every state of an enum made by [`stored_enum!`] survives SQLite, serde and
/// `parse` unchanged, and that an unknown word is refused by each.
#[cfg(test)]
macro_rules! assert_round_trip {
    ($name:ty) => {{
        use diesel::prelude::*;
        use diesel::sql_types::Text;
        let mut conn = diesel::SqliteConnection::establish(":memory:").unwrap();
        assert_eq!(<$name>::ALL.len(), <$name>::WORDS.len());
        for (state, word) in <$name>::ALL.iter().copied().zip(<$name>::WORDS.iter().copied()) {
            assert_eq!(state.to_string(), word);
            assert_eq!(<$name>::parse(word), Some(state));
            let read: $name =
                diesel::select(diesel::dsl::sql::<Text>(&format!("'{word}'"))).get_result(&mut conn).unwrap();
            assert_eq!(read, state);
            let stored: String = diesel::select(state.into_sql::<Text>()).get_result(&mut conn).unwrap();
            assert_eq!(stored, word);
            assert_eq!(serde_json::to_string(&state).unwrap(), format!("\"{word}\""));
            assert_eq!(serde_json::from_str::<$name>(&format!("\"{word}\"")).unwrap(), state);
        }
        assert_eq!(<$name>::parse("no-such-state"), None);
        assert!(diesel::select(diesel::dsl::sql::<Text>("'no-such-state'")).get_result::<$name>(&mut conn).is_err());
        assert!(serde_json::from_str::<$name>("\"no-such-state\"").is_err());
    }};
}

#[cfg(test)]
pub(crate) use assert_round_trip;
