-- title: Budget pace
-- description: This month's spend so far against the monthly budget pro rata (1.0: exactly on budget pace); the rule fires above the configured pace ratio.
SELECT spent_usd / ($budget_usd * elapsed) AS value
FROM ({{month_pace}})
