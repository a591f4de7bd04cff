//! How spans become Langfuse data (§4) and the v4 rows and trace view (§5).

use std::time::{Duration, UNIX_EPOCH};

use langfuse_observe_testing::opentelemetry_proto::tonic::common::v1::{any_value, KeyValueList};
use langfuse_observe_testing::TestServer;
use serde_json::{json, Value};

use crate::common::*;

const START: u64 = 1_700_000_000_000;

#[tokio::test]
async fn s4_4_scope_prefix_is_case_sensitive_and_other_scopes_get_an_attributes_dump() {
    let server = v4();
    let attributes = vec![
        s("langfuse.observation.type", "generation"),
        s("langfuse.observation.input", "hi"),
        s("langfuse.observation.metadata.k", "v"),
        int("retries", 2),
    ];
    let other = export_from(
        "Langfuse-sdk",
        vec![],
        vec![span(ROOT, None, "r", START, attributes.clone())],
    );
    otlp_proto(&server, &other).await;
    let stored = server.observation(&hex(&ROOT)).expect("stored");
    assert_eq!(
        meta(&stored, "attributes.langfuse.observation.type"),
        Some("generation")
    );
    assert_eq!(
        meta(&stored, "attributes.retries"),
        Some("2"),
        "non-strings JSON-encoded"
    );
    assert_eq!(
        meta(&stored, "attributes.langfuse.observation.input"),
        None,
        "input keys are left out"
    );
    assert_eq!(
        meta(&stored, "attributes.langfuse.observation.metadata.k"),
        None,
        "metadata prefixes too"
    );

    let own = export_from(
        "langfuse-sdk-rust",
        vec![],
        vec![span(CHILD, None, "c", START, attributes)],
    );
    otlp_proto(&server, &own).await;
    let stored = server.observation(&hex(&CHILD)).expect("stored");
    assert!(
        stored.metadata.keys().all(|k| !k.starts_with("attributes")),
        "{:?}",
        stored.metadata
    );
}

#[tokio::test]
async fn s4_4_every_v4_row_gets_flattened_resource_attributes_and_scope() {
    let server = v4();
    let stored = one_span(&server, vec![]).await;
    assert_eq!(
        meta(&stored, "resourceAttributes.service.name"),
        Some("rules")
    );
    assert_eq!(meta(&stored, "scope.name"), Some("langfuse-sdk-rust"));
    assert_eq!(meta(&stored, "scope.version"), Some("1.0.0"));
    assert_eq!(
        meta(&stored, "scope.attributes.public_key"),
        Some("pk-lf-test")
    );
}

#[tokio::test]
async fn s4_5_legacy_rows_keep_resource_attributes_and_scope_as_json_strings() {
    let server = v3();
    let stored = one_span(&server, vec![s("langfuse.observation.metadata.k", "v")]).await;
    assert_eq!(meta(&stored, "k"), Some("v"));
    let resource: Value =
        serde_json::from_str(meta(&stored, "resourceAttributes").expect("present"))
            .expect("JSON text");
    assert_eq!(resource, json!({"service.name": "rules"}));
    let scope: Value =
        serde_json::from_str(meta(&stored, "scope").expect("present")).expect("JSON text");
    assert_eq!(scope["name"], "langfuse-sdk-rust");
}

#[tokio::test]
async fn s4_3_kvlist_and_bytes_values_become_the_json_text_of_their_wrapper_bytes_as_buffer_inferred(
) {
    let server = v4();
    let stored = one_span(
        &server,
        vec![
            kv(
                "langfuse.observation.metadata.kv",
                any_value::Value::KvlistValue(KeyValueList {
                    values: vec![s("a", "b")],
                }),
            ),
            kv(
                "langfuse.observation.metadata.raw",
                any_value::Value::BytesValue(vec![1, 2]),
            ),
            kv(
                "langfuse.observation.metadata.d",
                any_value::Value::DoubleValue(1.5),
            ),
        ],
    )
    .await;
    let kv: Value = serde_json::from_str(meta(&stored, "kv").expect("present")).expect("JSON text");
    assert_eq!(
        kv,
        json!({"kvlistValue": {"values": [{"key": "a", "value": {"stringValue": "b"}}]}})
    );
    let raw: Value =
        serde_json::from_str(meta(&stored, "raw").expect("present")).expect("JSON text");
    assert_eq!(
        raw,
        json!({"bytesValue": {"type": "Buffer", "data": [1, 2]}})
    );
    assert_eq!(meta(&stored, "d"), Some("1.5"));
}

async fn type_of(
    attributes: Vec<langfuse_observe_testing::opentelemetry_proto::tonic::common::v1::KeyValue>,
) -> String {
    one_span(&v4(), attributes).await.observation_type
}

#[tokio::test]
async fn s4_6_type_mapper_langfuse_type_is_lower_case_only() {
    assert_eq!(
        type_of(vec![s("langfuse.observation.type", "agent")]).await,
        "AGENT"
    );
    assert_eq!(
        type_of(vec![s("langfuse.observation.type", "Generation")]).await,
        "SPAN"
    );
    assert_eq!(
        type_of(vec![
            s("langfuse.observation.type", "Generation"),
            s("gen_ai.operation.name", "execute_tool")
        ])
        .await,
        "TOOL",
        "an unknown value lets the next mapper decide"
    );
}

#[tokio::test]
async fn s4_6_type_mapper_priority_openinference_before_gen_ai_operation() {
    let both = vec![
        s("openinference.span.kind", "RETRIEVER"),
        s("gen_ai.operation.name", "chat"),
    ];
    assert_eq!(type_of(both).await, "RETRIEVER");
    assert_eq!(
        type_of(vec![s("openinference.span.kind", "LLM")]).await,
        "GENERATION"
    );
    let unknown = vec![
        s("openinference.span.kind", "RERANKER"),
        s("gen_ai.operation.name", "embeddings"),
    ];
    assert_eq!(type_of(unknown).await, "EMBEDDING");
}

#[tokio::test]
async fn s4_6_type_mapper_gen_ai_operation_names() {
    for (operation, kind) in [
        ("chat", "GENERATION"),
        ("generate_content", "GENERATION"),
        ("invoke_agent", "AGENT"),
        ("create_agent", "AGENT"),
        ("execute_tool", "TOOL"),
    ] {
        assert_eq!(
            type_of(vec![s("gen_ai.operation.name", operation)]).await,
            kind,
            "{operation}"
        );
    }
}

#[tokio::test]
async fn s4_6_type_mapper_tool_attributes_before_model_attributes() {
    let tool_and_model = vec![
        s("gen_ai.tool.call.id", "call-1"),
        s("gen_ai.request.model", "gpt"),
    ];
    assert_eq!(type_of(tool_and_model).await, "TOOL");
    assert_eq!(
        type_of(vec![s("model", "gpt")]).await,
        "GENERATION",
        "any model attribute"
    );
    assert_eq!(type_of(vec![s("unrelated", "x")]).await, "SPAN");
}

#[tokio::test]
async fn s4_7_level_alias_table_and_explicit_level_beats_status() {
    let server = v4();
    let cases = [
        ("warn", 0, "WARNING"),
        (" fatal ", 0, "ERROR"),
        ("info", 2, "DEFAULT"),
        ("verbose", 0, "DEBUG"),
        ("loud", 2, "ERROR"),
        ("loud", 1, "DEFAULT"),
    ];
    for (i, (level, code, expected)) in cases.into_iter().enumerate() {
        let id = [i as u8 + 10; 8];
        let sent = with_status(
            span(
                id,
                None,
                "s",
                START,
                vec![s("langfuse.observation.level", level)],
            ),
            code,
            "",
        );
        otlp_proto(&server, &export(vec![sent])).await;
        assert_eq!(
            server.observation(&hex(&id)).map(|o| o.level).as_deref(),
            Some(expected),
            "{level:?} with status {code}"
        );
    }
}

#[tokio::test]
async fn s4_7_status_code_must_be_the_number_2_inferred() {
    let server = v4();
    let body = json!({"resourceSpans": [{"scopeSpans": [{"scope": {"name": "langfuse-sdk-x"}, "spans": [
        {"traceId": hex(&TRACE), "spanId": hex(&ROOT), "name": "a", "startTimeUnixNano": "1", "status": {"code": "STATUS_CODE_ERROR"}},
        {"traceId": hex(&TRACE), "spanId": hex(&CHILD), "name": "b", "startTimeUnixNano": "1", "status": {"code": 2, "message": "boom"}}
    ]}]}]});
    assert_eq!(otlp_json(&server, &body).await.status, 200);
    assert_eq!(
        server.observation(&hex(&ROOT)).map(|o| o.level).as_deref(),
        Some("DEFAULT")
    );
    let child = server.observation(&hex(&CHILD)).expect("stored");
    assert_eq!(
        (child.level.as_str(), child.status_message.as_deref()),
        ("ERROR", Some("boom"))
    );
}

#[tokio::test]
async fn s4_7_status_message_attribute_before_span_status() {
    let server = v4();
    let sent = with_status(
        span(
            ROOT,
            None,
            "s",
            START,
            vec![s("langfuse.observation.status_message", "from attribute")],
        ),
        2,
        "from status",
    );
    otlp_proto(&server, &export(vec![sent])).await;
    assert_eq!(
        server
            .observation(&hex(&ROOT))
            .and_then(|o| o.status_message)
            .as_deref(),
        Some("from attribute")
    );
}

#[tokio::test]
async fn s4_7_gen_ai_tool_name_renames_the_observation() {
    let stored = one_span(&v4(), vec![s("gen_ai.tool.name", "search")]).await;
    assert_eq!(stored.name.as_deref(), Some("search"));
}

#[tokio::test]
async fn s4_7_model_usage_and_cost_are_dropped_for_invoke_agent() {
    let stored = one_span(
        &v4(),
        vec![
            s("gen_ai.operation.name", "invoke_agent"),
            s("gen_ai.request.model", "gpt"),
            s("langfuse.observation.usage_details", r#"{"input":1}"#),
            s("langfuse.observation.cost_details", r#"{"total":1}"#),
        ],
    )
    .await;
    assert_eq!(stored.observation_type, "AGENT");
    assert_eq!(
        (stored.model, stored.usage_details, stored.cost_details),
        (None, None, None)
    );
}

#[tokio::test]
async fn s4_7_model_name_order_and_parameters_as_strings_or_numbers() {
    let stored = one_span(
        &v4(),
        vec![
            s("gen_ai.request.model", "requested"),
            s("gen_ai.response.model", "responded"),
            kv(
                "gen_ai.request.temperature",
                any_value::Value::DoubleValue(0.2),
            ),
            boolean("gen_ai.request.stream", true),
            strings("gen_ai.request.stop", &["x"]),
        ],
    )
    .await;
    assert_eq!(stored.model.as_deref(), Some("responded"));
    assert_eq!(
        stored.model_parameters,
        Some(json!({"temperature": 0.2, "stream": "true", "stop": "[\"x\"]"}))
    );
}

#[tokio::test]
async fn s4_12_gen_ai_usage_applies_when_usage_details_is_absent() {
    let server = v4();
    let stored = one_span(
        &server,
        vec![
            int("gen_ai.usage.input_tokens", 100),
            int("gen_ai.usage.cache_read.input_tokens", 30),
            s("gen_ai.usage.output_tokens", "7"),
        ],
    )
    .await;
    assert_eq!(
        stored.usage_details,
        Some(json!({"input": 70, "input_cached_tokens": 30, "output": 7, "total": 107}))
    );
    let mut child = span(
        CHILD,
        None,
        "explicit",
        START,
        vec![
            s(
                "langfuse.observation.usage_details",
                r#"{"input":5,"output":1.5}"#,
            ),
            int("gen_ai.usage.input_tokens", 100),
        ],
    );
    child.trace_id = vec![1; 16];
    otlp_proto(&server, &export(vec![child])).await;
    assert_eq!(
        server
            .observation(&hex(&CHILD))
            .and_then(|o| o.usage_details),
        Some(json!({"input": 5, "total": 5})),
        "usage_details wins; floats are dropped"
    );
}

#[tokio::test]
async fn s4_7_cost_is_filtered_on_the_legacy_path_and_passed_on_in_v4_inferred() {
    let attributes = vec![
        s("langfuse.observation.type", "generation"),
        s(
            "langfuse.observation.cost_details",
            r#"{"input":1,"output":-2,"total":3}"#,
        ),
    ];
    let legacy = one_span(&v3(), attributes.clone()).await;
    assert_eq!(legacy.cost_details, Some(json!({"input": 1, "total": 3})));
    let direct = one_span(&v4(), attributes).await;
    assert_eq!(
        direct.cost_details,
        Some(json!({"input": 1, "output": -2, "total": 3})),
        "inferred: unfiltered"
    );
}

#[tokio::test]
async fn s4_7_completion_start_accepts_a_json_quoted_iso_string() {
    for server in [v3(), v4()] {
        let stored = one_span(
            &server,
            vec![
                s("langfuse.observation.type", "generation"),
                s(
                    "langfuse.observation.completion_start_time",
                    "\"2023-11-14T22:13:20.250Z\"",
                ),
            ],
        )
        .await;
        assert_eq!(
            stored.completion_start_time,
            Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_250))
        );
    }
}

#[tokio::test]
async fn s4_7_legacy_completion_start_number_or_zone_less_drops_the_whole_generation() {
    for value in [
        int(
            "langfuse.observation.completion_start_time",
            1_700_000_000_250,
        ),
        s(
            "langfuse.observation.completion_start_time",
            "2023-11-14T22:13:20",
        ),
    ] {
        let server = v3();
        let sent = span(
            ROOT,
            None,
            "g",
            START,
            vec![s("langfuse.observation.type", "generation"), value.clone()],
        );
        assert_eq!(
            otlp_proto(&server, &export(vec![sent.clone()]))
                .await
                .status,
            200
        );
        assert!(server.observation(&hex(&ROOT)).is_none(), "{value:?}");
        assert!(
            server.trace(&hex(&TRACE)).is_some(),
            "the trace event is separate"
        );
        let direct = v4();
        otlp_proto(&direct, &export(vec![sent])).await;
        assert!(
            direct
                .observation(&hex(&ROOT))
                .and_then(|o| o.completion_start_time)
                .is_some(),
            "v4 keeps it"
        );
    }
}

#[tokio::test]
async fn s4_13_legacy_string_prompt_version_or_name_alone_drops_the_generation() {
    for attributes in [
        vec![
            s("langfuse.observation.prompt.name", "p"),
            s("langfuse.observation.prompt.version", "3"),
        ],
        vec![s("langfuse.observation.prompt.name", "p")],
    ] {
        let server = TestServer::builder().langfuse_v3().prompt("p", 3).start();
        let mut all = vec![s("langfuse.observation.type", "generation")];
        all.extend(attributes);
        otlp_proto(&server, &export(vec![span(ROOT, None, "g", START, all)])).await;
        assert!(server.observation(&hex(&ROOT)).is_none());
    }
    let server = TestServer::builder().langfuse_v3().prompt("p", 3).start();
    let stored = one_span(
        &server,
        vec![
            s("langfuse.observation.type", "generation"),
            s("langfuse.observation.prompt.name", "p"),
            int("langfuse.observation.prompt.version", 3),
        ],
    )
    .await;
    assert_eq!(
        (stored.prompt_name.as_deref(), stored.prompt_version),
        (Some("p"), Some(3))
    );
    assert!(stored.prompt_id.is_some());
}

#[tokio::test]
async fn s4_13_v4_prompt_is_kept_as_sent_with_parse_int_version_on_generations_only() {
    let server = v4();
    let stored = one_span(
        &server,
        vec![
            s("langfuse.observation.type", "generation"),
            s("langfuse.observation.prompt.name", "p"),
            s("langfuse.observation.prompt.version", "3"),
        ],
    )
    .await;
    assert_eq!(
        (
            stored.prompt_name.as_deref(),
            stored.prompt_version,
            stored.prompt_id.as_deref()
        ),
        (Some("p"), Some(3), Some(""))
    );
    let mut span_row = span(
        CHILD,
        None,
        "s",
        START,
        vec![
            s("langfuse.observation.prompt.name", "p"),
            int("langfuse.observation.prompt.version", 3),
        ],
    );
    span_row.trace_id = vec![2; 16];
    otlp_proto(&server, &export(vec![span_row])).await;
    let stored = server.observation(&hex(&CHILD)).expect("stored");
    assert_eq!(
        (stored.observation_type.as_str(), stored.prompt_name),
        ("SPAN", None)
    );
}

#[tokio::test]
async fn s4_8_input_output_short_circuit_at_the_langfuse_pair() {
    let stored = one_span(
        &v4(),
        vec![
            s("langfuse.observation.input", "question"),
            s("gen_ai.output.messages", r#"[{"role":"assistant"}]"#),
        ],
    )
    .await;
    assert_eq!(stored.input, Some(json!("question")));
    assert_eq!(
        stored.output, None,
        "the output in gen_ai.output.messages is lost"
    );
}

#[tokio::test]
async fn s4_8_input_value_comes_before_bare_input_and_gen_ai_messages() {
    let stored = one_span(
        &v4(),
        vec![
            s("input.value", "iv"),
            s("input", "bare"),
            s("output", "bare out"),
            s("gen_ai.input.messages", "[]"),
        ],
    )
    .await;
    assert_eq!((stored.input, stored.output), (Some(json!("iv")), None));
    let stored = one_span(
        &v4(),
        vec![s("input", "bare"), s("gen_ai.output.messages", "[]")],
    )
    .await;
    assert_eq!((stored.input, stored.output), (Some(json!("bare")), None));
}

#[tokio::test]
async fn s4_8_gen_ai_messages_get_the_system_instructions_first() {
    let stored = one_span(
        &v4(),
        vec![
            s(
                "gen_ai.input.messages",
                r#"[{"role":"user","content":"hi"}]"#,
            ),
            s("gen_ai.system_instructions", "be brief"),
            s(
                "gen_ai.output.messages",
                r#"[{"role":"assistant","content":"ok"}]"#,
            ),
        ],
    )
    .await;
    assert_eq!(
        stored.input,
        Some(json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]))
    );
    assert_eq!(
        stored.output,
        Some(json!([{"role": "assistant", "content": "ok"}]))
    );
    let stored = one_span(
        &v4(),
        vec![
            s("gen_ai.tool.call.arguments", r#"{"q":1}"#),
            s("gen_ai.tool.call.result", "found"),
        ],
    )
    .await;
    assert_eq!(
        (stored.input, stored.output),
        (Some(json!({"q": 1})), Some(json!("found"))),
        "tool-call fallback"
    );
}

#[tokio::test]
async fn s4_9_metadata_object_then_flat_keys_which_override() {
    let stored = one_span(
        &v4(),
        vec![
            s("langfuse.observation.metadata", r#"{"a":"1","b":{"c":2}}"#),
            s("langfuse.observation.metadata.a", "flat"),
            s("langfuse.observation.metadata.x.y", "dotted"),
            s("langfuse.observation.metadata.json", r#"{"k":1}"#),
        ],
    )
    .await;
    assert_eq!(meta(&stored, "a"), Some("flat"));
    assert_eq!(
        meta(&stored, "b.c"),
        Some("2"),
        "v4 flattens nested objects"
    );
    assert_eq!(meta(&stored, "x.y"), Some("dotted"));
    assert_eq!(
        meta(&stored, "json"),
        Some(r#"{"k":1}"#),
        "a string with JSON stays a string"
    );
    let stored = one_span(&v4(), vec![s("langfuse.observation.metadata", "42")]).await;
    assert!(
        stored
            .metadata
            .keys()
            .all(|k| k.starts_with("resourceAttributes") || k.starts_with("scope")),
        "a non-object is dropped"
    );
}

#[tokio::test]
async fn s4_9_tools_in_metadata_move_into_the_input_json_encoded_list_inferred() {
    let stored = one_span(
        &v4(),
        vec![
            s("langfuse.observation.input", "what is the weather"),
            s(
                "langfuse.observation.metadata.tools",
                r#"[{"name":"weather"}]"#,
            ),
        ],
    )
    .await;
    assert_eq!(
        stored.input,
        Some(json!({"prompt": "what is the weather", "tools": [{"name": "weather"}]}))
    );
    assert_eq!(meta(&stored, "tools"), None);
    let stored = one_span(
        &v4(),
        vec![
            s("langfuse.observation.input", r#"[{"role":"user"}]"#),
            s(
                "langfuse.observation.metadata",
                r#"{"tools":[{"name":"t"}]}"#,
            ),
        ],
    )
    .await;
    assert_eq!(
        stored.input,
        Some(json!({"messages": [{"role": "user"}], "tools": [{"name": "t"}]}))
    );
}

#[tokio::test]
async fn s4_7_tags_forms() {
    let server = v4();
    let cases: Vec<(
        langfuse_observe_testing::opentelemetry_proto::tonic::common::v1::KeyValue,
        Vec<&str>,
    )> = vec![
        (strings("langfuse.trace.tags", &["a", "b"]), vec!["a", "b"]),
        (s("langfuse.trace.tags", r#"["c",1]"#), vec!["c", "1"]),
        (s("langfuse.trace.tags", "d , e"), vec!["d", "e"]),
        (s("langfuse.trace.tags", "single"), vec!["single"]),
        (s("tag.tags", "fallback"), vec!["fallback"]),
    ];
    for (i, (attribute, expected)) in cases.into_iter().enumerate() {
        let id = [i as u8 + 20; 8];
        otlp_proto(
            &server,
            &export(vec![span(id, None, "s", START, vec![attribute])]),
        )
        .await;
        assert_eq!(
            server
                .observation(&hex(&id))
                .map(|o| o.tags)
                .unwrap_or_default(),
            expected
        );
    }
}

#[tokio::test]
async fn s4_7_user_session_and_public_keys() {
    let stored = one_span(
        &v4(),
        vec![
            s("user.id", "fallback-user"),
            s("langfuse.user.id", "user"),
            s("gen_ai.conversation.id", "conversation"),
            s("langfuse.trace.public", "true"),
        ],
    )
    .await;
    assert_eq!(
        (
            stored.user_id.as_deref(),
            stored.session_id.as_deref(),
            stored.public
        ),
        (Some("user"), Some("conversation"), true)
    );
    let stored = one_span(
        &v4(),
        vec![
            s("langfuse.trace.public", "yes"),
            boolean("langfuse.public", true),
        ],
    )
    .await;
    assert!(
        !stored.public,
        "only true or \"true\" counts, and the first key present decides"
    );
}

#[tokio::test]
async fn s4_5_environment_key_order_span_then_resource_and_normalisation() {
    let server = v4();
    let sent = export_from(
        "langfuse-sdk-x",
        vec![
            s("langfuse.environment", "Langfuse_Staging"),
            s("service.version", "9.9"),
        ],
        vec![span(
            ROOT,
            None,
            "s",
            START,
            vec![s("deployment.environment.name", "prod")],
        )],
    );
    otlp_proto(&server, &sent).await;
    let stored = server.observation(&hex(&ROOT)).expect("stored");
    assert_eq!(
        stored.environment.as_deref(),
        Some("staging"),
        "resource langfuse.environment comes before span deployment.environment.name"
    );
    assert_eq!(
        stored.version.as_deref(),
        Some("9.9"),
        "service.version is the version fallback"
    );
    let sent = export_from(
        "langfuse-sdk-x",
        vec![s("langfuse.version", "ignored"), s("langfuse.release", "r")],
        vec![span(CHILD, None, "s", START, vec![])],
    );
    otlp_proto(&server, &sent).await;
    let stored = server.observation(&hex(&CHILD)).expect("stored");
    assert_eq!(
        (stored.version, stored.release.as_deref()),
        (None, Some("r")),
        "a resource langfuse.version is not read"
    );
}

#[tokio::test]
async fn s4_11_legacy_span_drops_model_and_usage_and_event_drops_end_time() {
    let server = v3();
    let model = vec![
        s("gen_ai.request.model", "gpt"),
        s("langfuse.observation.usage_details", r#"{"input":1}"#),
    ];
    let mut as_span = model.clone();
    as_span.push(s("langfuse.observation.type", "span"));
    let mut as_event = vec![s("langfuse.observation.type", "event")];
    as_event.extend(model.clone());
    otlp_proto(
        &server,
        &export(vec![
            span(ROOT, None, "s", START, as_span.clone()),
            span(CHILD, Some(ROOT), "e", START + 1, as_event),
        ]),
    )
    .await;
    let stored = server.observation(&hex(&ROOT)).expect("stored");
    assert_eq!((stored.model, stored.usage_details), (None, None));
    let event = server.observation(&hex(&CHILD)).expect("stored");
    assert_eq!(
        (event.observation_type.as_str(), event.end_time),
        ("EVENT", None)
    );
    let direct = one_span(&v4(), as_span).await;
    assert_eq!(
        (direct.model.as_deref(), direct.usage_details),
        (Some("gpt"), Some(json!({"input": 1, "total": 1}))),
        "v4 keeps them"
    );
}

#[tokio::test]
async fn s4_14_legacy_root_makes_a_full_trace_with_name_and_io_fallbacks() {
    let server = v3();
    let root = span(
        ROOT,
        None,
        "handle",
        START,
        vec![
            s("langfuse.observation.input", "in"),
            s("langfuse.observation.output", "out"),
            s("langfuse.observation.metadata.m", "v"),
            s("user.id", "u"),
        ],
    );
    otlp_proto(&server, &export(vec![root])).await;
    let trace = server.trace(&hex(&TRACE)).expect("trace");
    assert_eq!(trace.name.as_deref(), Some("handle"));
    assert_eq!(
        (trace.input, trace.output),
        (Some(json!("in")), Some(json!("out")))
    );
    assert_eq!(
        trace.metadata.get("m"),
        Some(&json!("v")),
        "the root's observation metadata"
    );
    assert_eq!(trace.user_id.as_deref(), Some("u"));
    assert_eq!(
        trace.timestamp,
        Some(UNIX_EPOCH + Duration::from_millis(START))
    );
}

#[tokio::test]
async fn s4_14_legacy_child_update_resets_public_and_nulls_release_and_version() {
    let server = v3();
    let root = span(
        ROOT,
        None,
        "root",
        START,
        vec![
            boolean("langfuse.trace.public", true),
            s("langfuse.release", "r1"),
            s("langfuse.version", "v1"),
            strings("langfuse.trace.tags", &["b"]),
        ],
    );
    let child = span(
        CHILD,
        Some(ROOT),
        "child",
        START + 10,
        vec![s("user.id", "u"), strings("langfuse.trace.tags", &["a"])],
    );
    // Children end first, so exporters send them first.
    otlp_proto(&server, &export(vec![child])).await;
    otlp_proto(&server, &export(vec![root])).await;
    let trace = server.trace(&hex(&TRACE)).expect("trace");
    assert_eq!(
        trace.public,
        Some(false),
        "the child's later update has no public"
    );
    assert_eq!((trace.release, trace.version), (None, None));
    assert_eq!(trace.tags, ["a", "b"], "tags are unioned");
    assert_eq!(trace.user_id.as_deref(), Some("u"));
    assert_eq!(trace.name.as_deref(), Some("root"));
}

#[tokio::test]
async fn s4_14_legacy_conversation_id_on_a_child_alone_does_not_reach_the_trace() {
    let server = v3();
    let root = span(ROOT, None, "root", START, vec![]);
    let child = span(
        CHILD,
        Some(ROOT),
        "child",
        START + 10,
        vec![s("gen_ai.conversation.id", "c")],
    );
    otlp_proto(&server, &export(vec![root, child])).await;
    let trace = server.trace(&hex(&TRACE)).expect("trace");
    assert_eq!(trace.session_id, None);
    assert_eq!(server.observations().len(), 2);
}

#[tokio::test]
async fn s4_14_legacy_trace_environment_is_fixed_by_the_first_batch() {
    let server = v3();
    let child = span(
        CHILD,
        Some(ROOT),
        "child",
        START + 10,
        vec![s("langfuse.environment", "early")],
    );
    let root = span(
        ROOT,
        None,
        "root",
        START,
        vec![s("langfuse.environment", "late")],
    );
    otlp_proto(&server, &export(vec![child])).await;
    otlp_proto(&server, &export(vec![root])).await;
    let trace = server.trace(&hex(&TRACE)).expect("trace");
    assert_eq!(trace.environment.as_deref(), Some("early"));
    assert_eq!(
        trace.name.as_deref(),
        Some("root"),
        "the root still names it"
    );
}

#[tokio::test]
async fn s4_14_legacy_trace_name_over_1000_chars_drops_the_trace_event() {
    let server = v3();
    let root = span(
        ROOT,
        None,
        "root",
        START,
        vec![s("langfuse.trace.name", &"n".repeat(1001))],
    );
    otlp_proto(&server, &export(vec![root])).await;
    assert!(server.observation(&hex(&ROOT)).is_some());
    assert_eq!(
        server.trace(&hex(&TRACE)).map(|t| t.name),
        None,
        "no trace row at all"
    );
}

#[tokio::test]
async fn s5_1_v4_reexport_replaces_the_whole_row() {
    let server = v4();
    otlp_proto(
        &server,
        &export(vec![span(
            ROOT,
            None,
            "first",
            START,
            vec![s("langfuse.observation.input", "x"), s("user.id", "u")],
        )]),
    )
    .await;
    otlp_proto(
        &server,
        &export(vec![span(ROOT, None, "second", START, vec![])]),
    )
    .await;
    let stored = server.observation(&hex(&ROOT)).expect("stored");
    assert_eq!(
        (stored.name.as_deref(), stored.input, stored.user_id),
        (Some("second"), None, None)
    );
    assert_eq!((stored.writes, server.observations().len()), (2, 1));
    assert_eq!(server.trace(&hex(&TRACE)).and_then(|t| t.user_id), None);
}

#[tokio::test]
async fn s5_2_v4_trace_tags_are_latest_non_empty_not_union() {
    let server = v4();
    otlp_proto(
        &server,
        &export(vec![span(
            ROOT,
            None,
            "root",
            START,
            vec![strings("langfuse.trace.tags", &["a", "b"])],
        )]),
    )
    .await;
    otlp_proto(
        &server,
        &export(vec![span(
            CHILD,
            Some(ROOT),
            "child",
            START + 1,
            vec![strings("langfuse.trace.tags", &["c"])],
        )]),
    )
    .await;
    otlp_proto(
        &server,
        &export(vec![span(
            [3; 8],
            Some(ROOT),
            "untagged",
            START + 2,
            vec![],
        )]),
    )
    .await;
    assert_eq!(
        server
            .trace(&hex(&TRACE))
            .map(|t| t.tags)
            .unwrap_or_default(),
        ["c"]
    );
}

#[tokio::test]
async fn s5_2_v4_trace_io_and_metadata_come_from_the_latest_parentless_row() {
    let server = v4();
    let root = span(
        ROOT,
        None,
        "root",
        START,
        vec![
            s("langfuse.observation.input", "root in"),
            s("langfuse.observation.metadata.k", "root"),
            s("langfuse.trace.input", "ignored"),
        ],
    );
    let child = span(
        CHILD,
        Some(ROOT),
        "child",
        START + 1,
        vec![
            s("langfuse.observation.input", "child in"),
            boolean("langfuse.internal.is_app_root", true),
        ],
    );
    otlp_proto(&server, &export(vec![root, child])).await;
    let trace = server.trace(&hex(&TRACE)).expect("trace");
    assert_eq!(
        trace.input,
        Some(json!("root in")),
        "not langfuse.trace.input, not the app root"
    );
    assert_eq!(trace.metadata.get("k"), Some(&json!("root")));
}

#[tokio::test]
async fn s5_2_v4_trace_name_is_the_latest_trace_name_else_a_root_row_name() {
    let server = v4();
    otlp_proto(
        &server,
        &export(vec![span(ROOT, None, "root-span", START, vec![])]),
    )
    .await;
    assert_eq!(
        server.trace(&hex(&TRACE)).and_then(|t| t.name).as_deref(),
        Some("root-span")
    );
    otlp_proto(
        &server,
        &export(vec![span(
            CHILD,
            Some(ROOT),
            "app",
            START + 1,
            vec![boolean("langfuse.internal.is_app_root", true)],
        )]),
    )
    .await;
    assert_eq!(
        server.trace(&hex(&TRACE)).and_then(|t| t.name).as_deref(),
        Some("app"),
        "an app root is a root row for the name"
    );
    otlp_proto(
        &server,
        &export(vec![span(
            [3; 8],
            Some(ROOT),
            "c",
            START + 2,
            vec![s("langfuse.trace.name", "explicit")],
        )]),
    )
    .await;
    assert_eq!(
        server.trace(&hex(&TRACE)).and_then(|t| t.name).as_deref(),
        Some("explicit")
    );
}

#[tokio::test]
async fn s5_2_v4_public_if_any_row_latest_non_empty_user_and_latest_row_environment_inferred() {
    let server = v4();
    otlp_proto(
        &server,
        &export(vec![span(
            ROOT,
            None,
            "root",
            START,
            vec![
                boolean("langfuse.trace.public", true),
                s("user.id", "u1"),
                s("langfuse.environment", "prod"),
            ],
        )]),
    )
    .await;
    otlp_proto(
        &server,
        &export(vec![span(CHILD, Some(ROOT), "child", START + 1, vec![])]),
    )
    .await;
    let trace = server.trace(&hex(&TRACE)).expect("trace");
    assert_eq!(trace.public, Some(true));
    assert_eq!(
        trace.user_id.as_deref(),
        Some("u1"),
        "an empty value does not win"
    );
    assert_eq!(
        trace.environment.as_deref(),
        Some("default"),
        "inferred: every row has an environment, so the latest row's wins"
    );
    assert_eq!(
        trace.timestamp,
        Some(UNIX_EPOCH + Duration::from_millis(START)),
        "the earliest start"
    );
}

#[tokio::test]
async fn s4_4_old_python_langfuse_sdk_spans_with_generation_attributes_are_generations() {
    let attributes = vec![
        s("langfuse.observation.type", "span"),
        s("langfuse.observation.model.name", "gpt"),
    ];
    let old_python = |version: &str| {
        let mut sent = export_from(
            "langfuse-sdk",
            vec![s("telemetry.sdk.language", "python")],
            vec![span(ROOT, None, "s", START, attributes.clone())],
        );
        if let Some(scope) = sent.resource_spans[0].scope_spans[0].scope.as_mut() {
            scope.version = version.to_owned();
        }
        sent
    };
    let server = v4();
    otlp_proto(&server, &old_python("3.3.0")).await;
    assert_eq!(
        server
            .observation(&hex(&ROOT))
            .map(|o| o.observation_type)
            .as_deref(),
        Some("GENERATION")
    );
    let server = v4();
    otlp_proto(&server, &old_python("3.4.0")).await;
    assert_eq!(
        server
            .observation(&hex(&ROOT))
            .map(|o| o.observation_type)
            .as_deref(),
        Some("SPAN")
    );
}

#[tokio::test]
async fn s4_8_the_inference_details_span_event_comes_before_bare_attributes() {
    use langfuse_observe_testing::opentelemetry_proto::tonic::trace::v1::span::Event;
    let server = v4();
    let mut sent = span(ROOT, None, "s", START, vec![s("input", "bare")]);
    sent.events = vec![
        Event {
            name: "exception".into(),
            attributes: vec![s("exception.message", "boom")],
            ..Default::default()
        },
        Event {
            name: "gen_ai.client.inference.operation.details".into(),
            attributes: vec![s("gen_ai.input.messages", r#"[{"role":"user"}]"#)],
            ..Default::default()
        },
    ];
    otlp_proto(&server, &export(vec![sent])).await;
    let stored = server.observation(&hex(&ROOT)).expect("stored");
    assert_eq!(stored.input, Some(json!([{"role": "user"}])));
    assert!(
        stored.metadata.keys().all(|k| !k.contains("exception")),
        "other span events are discarded"
    );
}

#[tokio::test]
async fn s5_2_v4_trace_without_a_parentless_row_has_no_input_or_output() {
    let server = v4();
    let orphan = span(
        CHILD,
        Some(ROOT),
        "orphan",
        START,
        vec![
            s("langfuse.observation.input", "x"),
            s("langfuse.trace.input", "y"),
        ],
    );
    otlp_proto(&server, &export(vec![orphan])).await;
    let trace = server
        .trace(&hex(&TRACE))
        .expect("a trace view exists for the rows");
    assert_eq!((trace.input, trace.output, trace.name), (None, None, None));
}
