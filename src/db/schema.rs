// Mirrors migrations/; keep the two in step (a test runs the migrations and queries every table).

diesel::table! {
    instructors (id) {
        id -> BigInt,
        email -> Text,
        password_hash -> Text,
        created_at -> BigInt,
        admin -> Bool,
    }
}

diesel::table! {
    course_staff (course_id, instructor_id) {
        course_id -> BigInt,
        instructor_id -> BigInt,
        role -> Text,
        granted_at -> BigInt,
        granted_by -> Nullable<BigInt>,
    }
}

diesel::table! {
    invitations (id) {
        id -> BigInt,
        token_hash -> Text,
        email -> Text,
        course_id -> Nullable<BigInt>,
        role -> Nullable<Text>,
        admin -> Bool,
        invited_by -> Nullable<BigInt>,
        created_at -> BigInt,
        expires_at -> BigInt,
        accepted_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        at -> BigInt,
        instructor_id -> Nullable<BigInt>,
        actor -> Text,
        surface -> Text,
        client -> Nullable<Text>,
        action -> Text,
        course_id -> Nullable<BigInt>,
        subject -> Text,
        detail -> Text,
    }
}

diesel::table! {
    api_token_courses (token_id, course_id) {
        token_id -> BigInt,
        course_id -> BigInt,
    }
}

diesel::table! {
    institution (id) {
        id -> BigInt,
        name -> Text,
        url -> Text,
        email -> Text,
        description -> Text,
        image -> Nullable<Binary>,
        image_type -> Nullable<Text>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    courses (id) {
        id -> BigInt,
        slug -> Text,
        title -> Text,
        description -> Text,
        position -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        current_module_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    modules (id) {
        id -> BigInt,
        title -> Text,
        description -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        starts_on -> Nullable<Text>,
    }
}

diesel::table! {
    course_modules (course_id, module_id) {
        course_id -> BigInt,
        module_id -> BigInt,
        position -> BigInt,
    }
}

diesel::table! {
    tasks (id) {
        id -> BigInt,
        title -> Text,
        description -> Text,
        criteria -> Text,
        hashtag -> Text,
        badge_image -> Nullable<Binary>,
        badge_image_type -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        expires_days -> Nullable<BigInt>,
    }
}

diesel::table! {
    module_tasks (module_id, task_id) {
        module_id -> BigInt,
        task_id -> BigInt,
        position -> BigInt,
    }
}

diesel::joinable!(course_modules -> courses (course_id));
diesel::joinable!(course_modules -> modules (module_id));
diesel::joinable!(module_tasks -> modules (module_id));
diesel::joinable!(module_tasks -> tasks (task_id));

diesel::table! {
    authors (id) {
        id -> BigInt,
        name -> Text,
        email -> Nullable<Text>,
        created_at -> BigInt,
        name_shown -> Text,
        pseudonym -> Nullable<Text>,
    }
}

diesel::table! {
    feeds (id) {
        id -> BigInt,
        author_id -> BigInt,
        url -> Text,
        site_url -> Nullable<Text>,
        title -> Text,
        status -> Text,
        confirm_token_hash -> Nullable<Text>,
        manage_token_hash -> Nullable<Text>,
        etag -> Nullable<Text>,
        last_modified -> Nullable<Text>,
        next_poll_at -> BigInt,
        last_polled_at -> Nullable<BigInt>,
        last_success_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        error_count -> BigInt,
        items_harvested -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        pending_name -> Nullable<Text>,
        joined_url -> Nullable<Text>,
    }
}

diesel::table! {
    links (id) {
        id -> BigInt,
        feed_id -> BigInt,
        author_id -> BigInt,
        item_key -> Text,
        url -> Nullable<Text>,
        title -> Text,
        author_name -> Nullable<Text>,
        summary_html -> Text,
        categories -> Text,
        published_at -> Nullable<BigInt>,
        updated_at -> Nullable<BigInt>,
        harvested_at -> BigInt,
        changed_at -> BigInt,
        content_hash -> Text,
        dismissed -> Bool,
        starred -> Bool,
        authorship -> Text,
        duplicate_of -> Nullable<BigInt>,
    }
}

diesel::table! {
    awards (id) {
        id -> BigInt,
        public_id -> Text,
        task_id -> BigInt,
        link_id -> Nullable<BigInt>,
        author_id -> Nullable<BigInt>,
        recipient_email -> Text,
        recipient_name -> Nullable<Text>,
        salt -> Text,
        identity -> Text,
        evidence_url -> Nullable<Text>,
        narrative -> Nullable<Text>,
        issued_on -> BigInt,
        expires -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        revocation_reason -> Nullable<Text>,
        awarded_by -> Nullable<BigInt>,
        assertion_json -> Text,
        baked_svg -> Binary,
        baked_png -> Binary,
        withdrawn_at -> Nullable<BigInt>,
        art_sha256 -> Nullable<Text>,
    }
}

diesel::table! {
    link_tasks (link_id, task_id) {
        link_id -> BigInt,
        task_id -> BigInt,
        source -> Text,
        tied -> Bool,
        created_at -> BigInt,
    }
}

diesel::joinable!(feeds -> authors (author_id));
diesel::joinable!(links -> feeds (feed_id));
diesel::joinable!(links -> authors (author_id));
diesel::joinable!(link_tasks -> links (link_id));
diesel::joinable!(link_tasks -> tasks (task_id));
diesel::joinable!(awards -> tasks (task_id));
diesel::joinable!(awards -> links (link_id));
diesel::joinable!(awards -> authors (author_id));

diesel::allow_tables_to_appear_in_same_query!(
    instructors,
    institution,
    courses,
    modules,
    course_modules,
    tasks,
    module_tasks,
    authors,
    feeds,
    links,
    link_tasks,
    awards,
);

diesel::table! {
    chain_meta (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    chain_records (id) {
        id -> BigInt,
        record_id -> Text,
        bytes -> Binary,
        award_id -> Nullable<BigInt>,
        kind -> Text,
        created_at -> BigInt,
        block_hash -> Nullable<Text>,
    }
}

diesel::table! {
    blocks (hash) {
        hash -> Text,
        height -> BigInt,
        prev -> Text,
        bytes -> Binary,
        timestamp -> BigInt,
        miner -> Text,
        received_at -> BigInt,
        on_main -> Bool,
    }
}

diesel::joinable!(chain_records -> awards (award_id));
diesel::allow_tables_to_appear_in_same_query!(chain_records, awards, blocks);

diesel::table! {
    outbox (id) {
        id -> BigInt,
        kind -> Text,
        award_id -> Nullable<BigInt>,
        source -> Nullable<Text>,
        target -> Nullable<Text>,
        status -> Text,
        attempts -> BigInt,
        next_attempt_at -> BigInt,
        last_error -> Nullable<Text>,
        endpoint -> Nullable<Text>,
        location -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        newsletter_issue_id -> Nullable<BigInt>,
        newsletter_subscriber_id -> Nullable<BigInt>,
        instructor_id -> Nullable<BigInt>,
        payload -> Nullable<Text>,
        author_id -> Nullable<BigInt>,
        feed_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    mentions (id) {
        id -> BigInt,
        source -> Text,
        target -> Text,
        status -> Text,
        reason -> Nullable<Text>,
        received_at -> BigInt,
        checked_at -> Nullable<BigInt>,
        client -> Nullable<Text>,
        moderation -> Text,
    }
}

diesel::joinable!(outbox -> awards (award_id));
diesel::allow_tables_to_appear_in_same_query!(outbox, awards, mentions);

diesel::table! {
    peers (id) {
        id -> BigInt,
        url -> Text,
        public_key -> Text,
        name -> Text,
        added_at -> BigInt,
        last_contact_at -> Nullable<BigInt>,
        last_height -> Nullable<BigInt>,
        records_relayed -> BigInt,
        blocks_received -> BigInt,
        last_error -> Nullable<Text>,
        failures -> BigInt,
        next_try_at -> BigInt,
        base_url -> Text,
        finality_refusals -> BigInt,
        last_refusal -> Nullable<Text>,
        last_refusal_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    peer_relays (peer_id, record_id) {
        peer_id -> BigInt,
        record_id -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(chain_records, peer_relays);

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        instructor_id -> BigInt,
        state -> Text,
        created_at -> BigInt,
        last_seen_at -> BigInt,
    }
}

diesel::table! {
    join_mails (id) {
        id -> BigInt,
        email -> Text,
        sent_at -> BigInt,
    }
}

diesel::table! {
    portfolios (author_id) {
        author_id -> BigInt,
        public_id -> Text,
        hidden -> Bool,
    }
}

diesel::table! {
    credentials (status_index) {
        status_index -> BigInt,
        public_id -> Text,
        credential_json -> Text,
        revoked -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    credential_keys (id) {
        id -> BigInt,
        public_key -> Text,
        key_file -> Nullable<Text>,
        created_at -> BigInt,
        retired_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    forget_events (id) {
        id -> BigInt,
        at -> BigInt,
        actor -> Text,
        instructor_id -> Nullable<BigInt>,
        awards_withdrawn -> BigInt,
        posts_deleted -> BigInt,
    }
}

diesel::table! {
    forget_requests (token_hash) {
        token_hash -> Text,
        author_id -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    newsletter_courses (course_id) {
        course_id -> BigInt,
        time_zone -> Text,
        note -> Text,
        skip_date -> Nullable<Text>,
        webmentions -> Bool,
        updated_at -> BigInt,
    }
}

diesel::table! {
    newsletter_subscribers (id) {
        id -> BigInt,
        course_id -> BigInt,
        email -> Text,
        name -> Text,
        status -> Text,
        confirm_token_hash -> Nullable<Text>,
        confirm_expires_at -> Nullable<BigInt>,
        created_at -> BigInt,
        confirmed_at -> Nullable<BigInt>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    newsletter_issues (id) {
        id -> BigInt,
        course_id -> BigInt,
        date -> Text,
        status -> Text,
        since -> BigInt,
        until -> BigInt,
        content -> Text,
        posts -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    newsletter_deliveries (id) {
        id -> BigInt,
        issue_id -> BigInt,
        subscriber_id -> BigInt,
        status -> Text,
        attempts -> BigInt,
        next_attempt_at -> BigInt,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    newsletter_secret (id) {
        id -> BigInt,
        secret -> Text,
    }
}

diesel::joinable!(newsletter_deliveries -> newsletter_issues (issue_id));
diesel::joinable!(newsletter_deliveries -> newsletter_subscribers (subscriber_id));
diesel::allow_tables_to_appear_in_same_query!(
    newsletter_courses,
    newsletter_subscribers,
    newsletter_issues,
    newsletter_deliveries,
    newsletter_secret,
);

diesel::table! {
    api_tokens (id) {
        id -> BigInt,
        instructor_id -> BigInt,
        name -> Text,
        token_hash -> Text,
        scopes -> Text,
        expires_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
        last_used_addr -> Nullable<Text>,
        revoked_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    api_idempotency (token_id, key) {
        token_id -> BigInt,
        key -> Text,
        request_hash -> Text,
        status -> BigInt,
        response -> Text,
        created_at -> BigInt,
    }
}

diesel::joinable!(api_tokens -> instructors (instructor_id));
diesel::allow_tables_to_appear_in_same_query!(api_tokens, instructors);

diesel::table! {
    webhooks (id) {
        id -> BigInt,
        instructor_id -> BigInt,
        url -> Text,
        secret -> Text,
        created_at -> BigInt,
        removed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> BigInt,
        webhook_id -> BigInt,
        event -> Text,
        award_id -> BigInt,
        payload -> Nullable<Text>,
        status -> Text,
        attempts -> BigInt,
        next_attempt_at -> BigInt,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));
diesel::allow_tables_to_appear_in_same_query!(webhook_deliveries, webhooks);

diesel::table! {
    status_index_seq (status_index) {
        status_index -> BigInt,
        reserved_at -> BigInt,
    }
}

diesel::table! {
    newsletter_complaints (id) {
        id -> BigInt,
        subscriber_id -> BigInt,
        source -> Text,
        created_at -> BigInt,
    }
}

diesel::joinable!(newsletter_complaints -> newsletter_subscribers (subscriber_id));
diesel::allow_tables_to_appear_in_same_query!(newsletter_complaints, newsletter_subscribers);

diesel::table! {
    demo_state (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    demo_learners (id) {
        id -> BigInt,
        slug -> Text,
        name -> Text,
        email -> Text,
        format -> Text,
        about -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    demo_posts (id) {
        id -> BigInt,
        learner_id -> BigInt,
        slug -> Text,
        title -> Text,
        body -> Text,
        categories -> Text,
        published_at -> BigInt,
    }
}

diesel::table! {
    demo_mentions (id) {
        id -> BigInt,
        post_id -> BigInt,
        source -> Text,
        status -> Text,
        title -> Nullable<Text>,
        reason -> Nullable<Text>,
        received_at -> BigInt,
        checked_at -> Nullable<BigInt>,
    }
}

diesel::joinable!(demo_posts -> demo_learners (learner_id));
diesel::joinable!(demo_mentions -> demo_posts (post_id));
diesel::allow_tables_to_appear_in_same_query!(demo_learners, demo_posts, demo_mentions);

diesel::table! {
    dashboard_task_days (task_id, day) {
        task_id -> BigInt,
        day -> BigInt,
        posts -> BigInt,
    }
}

diesel::table! {
    dashboard_task_authors (task_id, author_id) {
        task_id -> BigInt,
        author_id -> BigInt,
        posts -> BigInt,
    }
}

diesel::table! {
    dashboard_task_awards (task_id) {
        task_id -> BigInt,
        awards -> BigInt,
        recorded -> BigInt,
    }
}

diesel::table! {
    dashboard_task_delivery (task_id, status, tried) {
        task_id -> BigInt,
        status -> Text,
        tried -> BigInt,
        n -> BigInt,
    }
}

diesel::table! {
    award_art (sha256) {
        sha256 -> Text,
        svg -> Binary,
        png -> Binary,
        created_at -> BigInt,
    }
}

diesel::joinable!(awards -> award_art (art_sha256));
diesel::allow_tables_to_appear_in_same_query!(awards, award_art);

diesel::joinable!(course_staff -> courses (course_id));
diesel::joinable!(course_staff -> instructors (instructor_id));
diesel::joinable!(api_token_courses -> courses (course_id));
diesel::allow_tables_to_appear_in_same_query!(course_staff, courses);
diesel::allow_tables_to_appear_in_same_query!(course_staff, instructors);
diesel::allow_tables_to_appear_in_same_query!(course_staff, course_modules);
diesel::allow_tables_to_appear_in_same_query!(course_staff, module_tasks);
diesel::allow_tables_to_appear_in_same_query!(api_token_courses, api_tokens);
diesel::allow_tables_to_appear_in_same_query!(api_token_courses, courses);
diesel::allow_tables_to_appear_in_same_query!(invitations, courses);
diesel::allow_tables_to_appear_in_same_query!(invitations, instructors);

diesel::table! {
    feed_claims (feed_id) {
        feed_id -> BigInt,
        email -> Text,
        name -> Text,
        name_shown -> Text,
        pseudonym -> Nullable<Text>,
        adopt -> Bool,
        confirm_token_hash -> Nullable<Text>,
        manage_token_hash -> Nullable<Text>,
        requested_at -> BigInt,
        confirmed_at -> Nullable<BigInt>,
    }
}

diesel::joinable!(feed_claims -> feeds (feed_id));
diesel::allow_tables_to_appear_in_same_query!(feed_claims, feeds);
diesel::allow_tables_to_appear_in_same_query!(feed_claims, authors);
