"""No dead knob: every key of schemas/monitor-config.schema.json has a test that shows its
effect (a report, an alert, a client setting or a message that changes with the key).

- Every floor of the check catalogue is walked here: the key moves the verdict the alert
  policy gives one check (``test_floor_key_changes_the_verdict``).
- Every other key names its test(s) in ``EFFECT``; each must exist as a collected test.
- ``GAPS`` lists the keys still without such a test (reported, never silently passing): it
  may only shrink; a new key without a test fails here.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from kernels.catalogue import CHECKS, Check
from monitor.config import from_dict
from monitor.records import CheckResult, WindowReport
from monitor.stage2.evaluate import policy_from_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "schemas" / "monitor-config.schema.json").read_text())

C, Q, K, A, W, E, T = ("test_config", "test_quality", "test_knobs", "test_alert_policy",
                       "test_windows", "test_setting_effects", "test_trigger_sink")
X, XK, XL = "test_knob_effects", "test_knob_effects_kafka", "test_knob_effects_labels"
EFFECT: dict[str, list[str]] = {
    # the CLI silences on topics.silences, stage 2 restores from topics.stage2_state
    "topics.silences": ["test_stage2_restart::test_kill_9_of_stage_2_while_an_alert_fires"],
    "topics.stage2_state": ["test_stage2_restart::test_kill_9_of_stage_2_while_an_alert_fires"],
    "kafka.bootstrap": [f"{C}::test_bootstrap_env_override", f"{C}::test_faust_broker_settings"],
    "kafka.security_protocol": [f"{C}::test_kafka_client_config_sasl_tls"],
    "kafka.sasl.mechanism": [f"{C}::test_kafka_client_config_sasl_tls",
                             f"{C}::test_faust_broker_settings"],
    "kafka.sasl.username": [f"{C}::test_kafka_client_config_sasl_tls"],
    "kafka.sasl.password_env": [f"{C}::test_kafka_client_config_sasl_tls",
                                f"{C}::test_secret_resolution_is_lazy_and_errors_name_the_field"],
    "kafka.sasl.password_file": [f"{C}::test_password_file"],
    "kafka.tls.ca_file": [f"{C}::test_kafka_client_config_sasl_tls",
                          f"{C}::test_kafka_client_config_missing_tls_file"],
    "kafka.tls.cert_file": [f"{C}::test_kafka_client_config_sasl_tls"],
    "kafka.tls.key_file": [f"{C}::test_kafka_client_config_sasl_tls"],
    "kafka.tls.key_password_env": [f"{C}::test_kafka_client_config_sasl_tls"],
    "kafka.tls.check_hostname": [f"{C}::test_kafka_client_config_sasl_tls"],
    "kafka.properties": [f"{C}::test_kafka_client_config_sasl_tls"],
    "stream.format": ["test_decode::test_avro_round_trip"],
    "stage1.processes": ["test_stage1_processes::"
                         "test_stage1_processes_sets_the_processes_and_the_flag_overrides_it"],
    "stream.schema_registry_url": ["test_decode::test_avro_round_trip",
                                   "test_decode::test_avro_registry_down_raises"],
    "stream.event_time.field": ["test_decode::test_event_time_units"],
    "stream.event_time.unit": ["test_decode::test_event_time_units"],
    "stream.event_id_field": [f"{Q}::test_duplicates_and_consumer_lag"],
    "stream.known_fields": ["test_decode::test_schema_change_detection"],
    "stream.max_future_skew": [
        "faults.test_future_event_time::test_max_future_skew_decides_which_events_are_too_far_ahead"],
    "features.numeric": ["test_evaluate::test_fixed_profile_flags_a_stream_that_differs_from_training"],
    "features.categorical": [f"{E}::test_chi2_switch_turns_the_test_off"],
    "features.rules[].match": [f"{K}::test_floor_key_changes_the_verdict"],
    "features.rules[].range": [f"{Q}::test_null_field_range_and_outliers_against_the_reference"],
    "features.rules[].drift.enabled": [f"{K}::test_feature_rule_switches_leave_checks_out"],
    "features.rules[].drift.chi2": [f"{K}::test_feature_rule_switches_leave_checks_out"],
    "features.rules[].quality.enabled": [f"{K}::test_feature_rule_switches_leave_checks_out"],
    "prediction.score": [f"{E}::test_prediction_enabled_false_leaves_score_drift_out"],
    "prediction.class": ["test_decode::test_outcomes_and_groups"],
    "prediction.threshold": ["test_decode::test_threshold_gives_prediction_when_no_class_field"],
    "prediction.label": ["test_decode::test_outcomes_and_groups"],
    "sensitive.attribute": ["test_decode::test_outcomes_and_groups"],
    "sensitive.reference_group": [f"{E}::test_reference_group_reaches_the_comparison"],
    "sensitive.min_group_events": [f"{E}::test_min_group_events_below_200_takes_effect"],
    "windows.slide": [f"{C}::test_hopping_windows_and_slide_equal_to_size"],
    "windows.allowed_lateness": [f"{W}::test_late_event_counted_in_the_open_window"],
    "windows.idle_timeout": [f"{W}::test_heartbeat_closes_idle_windows"],
    "windows.min_events": ["test_kernels_stats::test_insufficient_windows_say_so"],
    "reference.rolling_windows": [
        "test_evaluate::test_rolling_reference_is_the_last_healthy_windows_and_reports_say_so"],
    "checks.family_level": [f"{A}::test_bonferroni_budget_spans_all_tests_of_the_window"],
    "checks.correction": [f"{A}::test_benjamini_hochberg_step_up"],
    "checks.numeric.enabled": [f"{K}::test_family_switches_leave_their_checks_out"],
    "checks.categorical.enabled": [f"{K}::test_family_switches_leave_their_checks_out"],
    "checks.categorical.chi2": [f"{E}::test_chi2_switch_turns_the_test_off"],
    "checks.prediction.enabled": [f"{E}::test_prediction_enabled_false_leaves_score_drift_out"],
    "checks.fairness.enabled": [f"{E}::test_fairness_enabled_false_leaves_fairness_out"],
    "checks.quality.enabled": [f"{Q}::test_quality_off_is_drift_only"],
    "checks.quality.expected_events_per_window": [
        f"{Q}::test_volume_drop_and_spike_against_recent_windows"],
    "checks.quality.max_event_delay": ["test_decode::test_ingest_times_only_when_freshness_is_judged"],
    "checks.quality.max_consumer_lag": [f"{Q}::test_duplicates_and_consumer_lag"],
    "checks.quality.missing_rate_max": [f"{K}::test_floor_key_changes_the_verdict"],
    "alerts.confirm_windows": [f"{A}::test_confirmation_and_resolution_over_k_windows"],
    "alerts.resolve_windows": [f"{A}::test_confirmation_and_resolution_over_k_windows"],
    "alerts.reopen_windows": [
        "test_alert_flapping::test_a_persistent_fault_is_one_alert_and_one_thread_by_default",
        "test_alert_flapping::test_the_fault_flaps_when_reopening_is_off"],
    "alerts.silences[].feature": [f"{A}::test_silences_hold_notifications_until_they_expire"],
    "alerts.silences[].until": [f"{A}::test_silences_hold_notifications_until_they_expire"],
    "slack.mention": [f"{E}::test_slack_mention_only_on_critical_alerts"],
    "slack.base_url": ["test_slack_sink::test_webhook_sink"],
    "model.name": ["test_model_identity::test_reports_name_the_model_and_the_profile_records_its_version"],
    "model.version": [
        "test_model_identity::test_reports_name_the_model_and_the_profile_records_its_version",
        f"{T}::test_a_new_model_version_has_its_own_cooldown_and_names_itself"],
    "model.version_field": [
        "test_model_versions::test_each_version_has_its_own_windows_reports_and_alerts",
        "test_model_versions::test_missing_and_unusable_versions_are_counted_and_left_out"],
    "model.max_versions": ["test_model_versions::test_versions_beyond_max_versions_are_refused"],
    "triggers.on": [f"{T}::test_policy_severity_confirmation_cooldown_and_families"],
    "triggers.confirm_windows": [f"{T}::test_policy_severity_confirmation_cooldown_and_families"],
    "triggers.cooldown": [f"{T}::test_policy_severity_confirmation_cooldown_and_families"],
    "http.host": ["test_compose::test_http_host_override"],
    "http.port": ["faults.test_supervision::test_a_refused_dead_letter_write_fails_stage_1_loudly"],
    **{key: [f"{X}::{test}"] for key, test in (
        ("version", "test_version_is_checked"),
        ("output.reports_jsonl", "test_reports_jsonl_is_where_stage_2_appends_its_committed_"
                                 "reports"),
        ("monitor", "test_monitor_name_reaches_topics_groups_and_alert_keys"),
        ("kafka.group_id", "test_group_id_names_every_group_and_the_transactional_id"),
        ("kafka.session_timeout_ms", "test_session_timeout_is_how_long_unacknowledged_writes_"
                                     "wait_before_health_fails"),
        ("triggers.enabled", "test_triggers_enabled_decides_whether_the_trigger_sink_runs"),
        ("features.rules[].type", "test_rule_type_limits_a_rule_to_one_kind_of_feature"),
        ("windows.size", "test_windows_size_sets_the_windows_of_the_reports"),
        ("reference.profile", "test_reference_profile_is_the_profile_the_monitor_compares_"
                              "against"),
        ("checks.quality.volume_baseline_windows",
         "test_volume_baseline_windows_is_how_far_back_the_volume_looks"),
        ("alerts.repeat_interval", "test_repeat_interval_decides_when_a_firing_alert_is_"
                                   "repeated"),
        ("alerts.silences[].check", "test_silence_check_and_family_choose_what_is_held_back"),
        ("alerts.silences[].family", "test_silence_check_and_family_choose_what_is_held_back"),
        ("alerts.silences[].reason", "test_silence_reason_is_shown_on_the_status_page"),
        ("dead_letter.retention", "test_dead_letter_retention_reaches_its_topic_policy"),
        ("stream.schema_registry.password_file",
         "test_registry_password_file_and_token_env_reach_the_request_headers"),
        ("stream.schema_registry.token_env",
         "test_registry_password_file_and_token_env_reach_the_request_headers"),
        ("prediction.positive_class", "test_positive_class_and_label_decide_what_counts_as_"
                                      "positive"),
        ("prediction.positive_label", "test_positive_class_and_label_decide_what_counts_as_"
                                      "positive"),
        ("slack.token_env", "test_slack_token_is_what_the_sink_authenticates_with"),
        ("slack.token_file", "test_slack_token_is_what_the_sink_authenticates_with"),
        ("slack.channel", "test_slack_channel_and_runbook_url_shape_the_message"),
        ("slack.runbook_url", "test_slack_channel_and_runbook_url_shape_the_message"),
        ("slack.webhook_url_env", "test_slack_webhook_url_is_where_the_sink_posts"),
        ("slack.webhook_url_file", "test_slack_webhook_url_is_where_the_sink_posts"),
        ("webhooks[].url", "test_webhook_url_is_where_alerts_go"),
        ("webhooks[].url_env", "test_webhook_url_is_where_alerts_go"),
        ("webhooks[].name", "test_webhook_name_names_the_sink_and_its_group"),
        ("webhooks[].signing_secret_env", "test_webhook_signing_secret_signs_each_post"),
        ("webhooks[].signing_secret_file", "test_webhook_signing_secret_signs_each_post"),
        ("webhooks[].timeout", "test_timeout_is_how_long_a_sink_waits_for_an_answer"),
        ("alertmanager.timeout", "test_timeout_is_how_long_a_sink_waits_for_an_answer"),
    )},
    **{f"topics.{role}": [f"{X}::test_topic_names_reach_what_run_creates_and_check_demands"]
       for role in ("partials", "reports", "alerts", "triggers", "dead_letter", "state")},
    **{f"topics.retention.{role}": [f"{X}::test_topic_retentions_reach_the_topic_policies"]
       for role in ("partials", "reports", "alerts", "triggers")},
    **{f"stream.{key}": [f"{XK}::test_stream_topic_start_from_and_batch_size"]
       for key in ("topic", "start_from", "batch_size")},
    "stream.snapshot_interval": [
        f"{XK}::test_snapshot_interval_is_how_often_stage_1_stores_its_state"],
    "topics.replication_factor": [
        f"{XK}::test_replication_factor_is_what_new_topics_are_created_with"],
    "kafka.tls.key_password_file": [
        "test_secure_access::test_wrong_tls_key_password_names_the_setting"],
    "webhooks[].url_file": [
        "test_webhook_sink::test_4xx_is_permanent_and_resumes_when_the_url_file_is_fixed"],
    # the registry's answer changes with the credentials and the CA
    "stream.schema_registry.username": ["test_registry_auth::test_basic_auth_from_env"],
    "stream.schema_registry.password_env": ["test_registry_auth::test_basic_auth_from_env"],
    "stream.schema_registry.token_file": [
        "test_registry_auth::test_bearer_token_from_file_over_https_with_a_private_ca"],
    "stream.schema_registry.ca_file": [
        "test_registry_auth::test_bearer_token_from_file_over_https_with_a_private_ca"],
    # the section reaches the dead-letter copy; each value changes what the copy keeps
    "dead_letter.payload": ["test_dead_letter::test_config_section_and_its_errors",
                            "test_dead_letter::test_hash_keeps_only_the_digest_and_drops_the_"
                            "error_text",
                            "test_dead_letter::test_drop_keeps_nothing_but_the_reason_and_"
                            "position"],
    "dead_letter.drop_fields": ["test_dead_letter::test_config_section_and_its_errors",
                                "test_dead_letter::test_raw_with_drop_fields_never_lets_a_"
                                "dropped_field_through"],
    # the section reaches the sink; what the sink sends to a real Alertmanager carries it
    **{f"alertmanager.{key}": [
        "test_sink_config::test_alertmanager_section_reaches_the_sink",
        "test_alertmanager::test_alerts_arrive_group_by_monitor_survive_a_restart_and_resolve"]
       for key in ("url", "status_url", "labels")},
    "alertmanager.resend_interval": [
        "test_sink_config::test_alertmanager_section_reaches_the_sink",
        "test_alertmanager::test_escalation_replaces_the_warning_and_a_restarted_sink_keeps_"
        "resending"],
    # labels: each key judged twice over the same files by replay --labels' code path
    **{f"labels.{key}": [f"{XL}::test_{name}"] for key, name in (
        ("id_field", "id_field_picks_the_column_labels_are_joined_by"),
        ("label_field", "label_field_picks_the_outcome_column"),
        ("event_time_field", "event_time_field_decides_when_a_label_arrived"),
        ("max_delay", "max_delay_expires_labels_later_than_it"),
        ("positive_label", "positive_label_names_the_positive_outcome"),
        ("min_labelled", "min_labelled_holds_back_judgement"),
        ("n_bins", "n_bins_sets_the_auc_error_bound"),
        ("slices.keys", "slice_keys_choose_the_slices"),
        ("slices.top_k", "slice_top_k_sets_how_many_categories_stand_alone"),
        ("slices.min_size", "slice_min_size_holds_back_slices_not_the_window"),
        ("checks.alpha", "alpha_is_the_family_error_budget"),
        ("checks.max_drop", "max_drop_is_the_smallest_drop_that_alerts"),
        ("checks.floors", "floors_judge_a_figure_against_an_absolute_minimum"))},
    # the live join reads labels from the configured topic (a fresh one per test): the
    # labelled counts asserted there only exist if the monitor consumed that topic
    "labels.topic": ["test_labels_live::test_live_labels_with_a_restart_of_each_stage"],
    # drift and quality per slice: each key changes the slices a window report judges
    **{f"slices.{key}": [f"test_slice_knobs::test_{name}"] for key, name in (
        ("keys", "keys_choose_the_slices"), ("top_k", "top_k_sets_how_many_values_are_slices"),
        ("min_size", "min_size_decides_which_slices_are_judged"),
        ("bins", "bins_set_the_drift_bins_of_a_slice"))},
}

#: keys without a test that shows their effect yet (see the module docstring)
GAPS: set[str] = set()


def _resolve(node: dict) -> dict:
    while "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def schema_keys(node: dict = SCHEMA, path: str = "") -> list[str]:
    """Every leaf key of the schema, dotted (``[]`` for the items of a list of maps)."""
    node = _resolve(node)
    if "properties" in node:
        return [k for name, sub in node["properties"].items()
                for k in schema_keys(sub, f"{path}.{name}" if path else name)]
    items = node.get("items")
    if node.get("type") == "array" and isinstance(items, dict) and \
            "properties" in _resolve(items):
        return schema_keys(items, path + "[]")
    return [path]


def floor_keys() -> dict[str, Check]:
    """Schema key -> catalogue row, for every floor (the section's and the feature rules')."""
    # performance floors live under labels.checks (delayed labels: tests/test_performance.py)
    out = {f"checks.{c.floor_key}": c for c in CHECKS
           if c.floor_key and c.family != "performance"}
    out.update({f"features.rules[].{c.per_feature}.{c.floor_key.split('.')[1]}": c
                for c in CHECKS if c.per_feature and c.floor_key})
    return out


def test_every_schema_key_has_a_test_that_shows_its_effect():
    keys = set(schema_keys())
    floors = set(floor_keys())
    missing = keys - floors - set(EFFECT) - GAPS
    assert not missing, f"config keys without a test of their effect: {sorted(missing)}; " \
        "add one and name it in tests/test_knobs.py EFFECT"
    assert GAPS <= keys and not GAPS & (set(EFFECT) | floors), "a gap is closed: drop it"
    assert set(EFFECT) <= keys, sorted(set(EFFECT) - keys)
    for key, ids in EFFECT.items():
        for test_id in ids:
            module, name = test_id.split("::")
            mod = importlib.import_module(f"tests.{module}")
            assert callable(getattr(mod, name, None)) and name.startswith("test_"), test_id


def _config(key: str, value: float) -> dict:
    d = {"monitor": "m", "kafka": {"bootstrap": "k:9092"}, "stream": {"topic": "t"},
         "features": {"numeric": ["x"], "categorical": ["c"]},
         "prediction": {"score": "s", "class": "y"}, "sensitive": {"attribute": "g"},
         "windows": {"size": "1m"}, "reference": {"profile": "/r"}}
    parts = key.split(".")
    if parts[0] == "features":  # a feature rule: features.rules[].<drift|quality>.<key>
        d["features"]["rules"] = [{"match": "*", parts[2]: {parts[3]: value}}]
    else:
        d.setdefault("checks", {}).setdefault(parts[1], {})[parts[2]] = value
    return d


def _subject(c: Check, key: str) -> str:
    if c.family == "prediction_drift":
        return "s"
    if key.startswith("features.") or c.per_feature:
        return "c" if c.family == "categorical_drift" or c.name == "unseen_rate" else "x"
    return "*"


@pytest.mark.parametrize("key", sorted(floor_keys()))
def test_floor_key_changes_the_verdict(key):
    """An effect between the default floor and the configured one: bad at one, fine at the
    other (p-value tiny where the check has a test, an interval beside it for fairness)."""
    c = floor_keys()[key]
    default = c.default if not c.one_minus else 1 - c.default
    new = default * 1.5 if c.one_minus else (default + 1) / 2 if default < 1 < default * 3 \
        else default * 3  # rates stay within [0, 1]
    value = new if not c.one_minus else 1 - new
    effect = (default + new) / 2
    check = CheckResult(check=c.name, family=c.family, feature=_subject(c, key),
                        statistic=effect, p_value=1e-12 if c.test else None,
                        effect_size=effect, n_window=10_000, n_reference=100_000,
                        sufficient=True, detail={"ci_low": effect, "ci_high": effect})
    report = WindowReport("m", 0, 60_000, "p", 10_000, 0, 0, [0], {}, [check], False, "0")
    before = policy_from_config(from_dict(_base(), env={})).verdicts(report)[0]
    after = policy_from_config(from_dict(_config(key, value), env={})).verdicts(report)[0]
    assert before.bad and not after.bad, (before.why, after.why)


def _base() -> dict:
    d = _config("checks.numeric.enabled", 1)
    del d["checks"]
    return d


def test_family_switches_leave_their_checks_out():
    from monitor.stage2.evaluate import check_enabled
    from kernels.catalogue import CATALOGUE

    on = from_dict(_base(), env={})
    for section, family in (("numeric", "numeric_drift"), ("categorical", "categorical_drift")):
        d = _base()
        d["checks"] = {section: {"enabled": False}}
        off = from_dict(d, env={})
        feature = "x" if section == "numeric" else "c"
        for (fam, name), c in CATALOGUE.items():
            if fam == family:
                assert check_enabled(on, c, feature) and not check_enabled(off, c, feature)


def test_feature_rule_switches_leave_checks_out():
    from kernels.catalogue import CATALOGUE
    from monitor.stage2.evaluate import check_enabled

    d = _base()
    d["features"]["rules"] = [{"match": "c", "drift": {"chi2": False}},
                              {"match": "x", "drift": {"enabled": False},
                               "quality": {"enabled": False}}]
    cfg = from_dict(d, env={})
    assert not check_enabled(cfg, CATALOGUE["categorical_drift", "chi2"], "c")
    assert check_enabled(cfg, CATALOGUE["categorical_drift", "js"], "c")
    assert not check_enabled(cfg, CATALOGUE["numeric_drift", "ks"], "x")
    assert not check_enabled(cfg, CATALOGUE["quality", "null_rate"], "x")
    assert check_enabled(cfg, CATALOGUE["quality", "null_rate"], "c")
