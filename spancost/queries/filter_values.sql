-- title: Values of {{label}}
-- description: The {{label}}s seen in the time range, for the dashboards' {{label}} filter.
-- variant: service_values label=service column=ServiceName
-- variant: workspace_values label=workspace column=WorkspaceId
-- variant: feature_values label=feature column=Feature
-- variant: prompt_values label=prompt column=PromptName
-- variant: model_values label=model column=Model
SELECT DISTINCT {{column}} AS {{label}}
FROM llm_daily
WHERE $__dateFilter(Date) AND {{column}} != ''
ORDER BY {{label}}
