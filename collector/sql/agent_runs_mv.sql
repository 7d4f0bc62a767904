-- Agent and workflow spans of otel_traces → agent_runs.
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.agent_runs_mv {on_cluster}
TO {database}.{agent_runs}
AS SELECT
    Timestamp,
    TraceId,
    SpanId,
    ParentSpanId,
    ServiceName,
    SpanAttributes['gen_ai.operation.name'] AS Operation,
    if(SpanAttributes['gen_ai.agent.name'] != '', SpanAttributes['gen_ai.agent.name'],
       SpanAttributes['gen_ai.workflow.name']) AS AgentName,
    SpanAttributes['spancost.prompt.name'] AS PromptName,
    SpanAttributes['user.id'] AS UserId,
    SpanAttributes['spancost.workspace.id'] AS WorkspaceId,
    SpanAttributes['spancost.feature'] AS Feature,
    SpanAttributes['spancost.run.id'] AS RunId,
    Duration AS DurationNs,
    StatusCode
FROM {database}.{otel_traces}
WHERE SpanAttributes['gen_ai.operation.name'] IN ('invoke_agent', 'invoke_workflow')
