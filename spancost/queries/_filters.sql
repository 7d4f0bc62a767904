-- The dashboards' template variables as conditions on llm_calls columns; a variable set to All adds none.
$__conditionalAll(ServiceName IN ($service), $service)
    AND $__conditionalAll(WorkspaceId IN ($workspace), $workspace)
    AND $__conditionalAll(Feature IN ($feature), $feature)
    AND $__conditionalAll(PromptName IN ($prompt), $prompt)
    AND $__conditionalAll(Model IN ($model), $model)
