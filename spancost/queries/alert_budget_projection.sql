-- title: Projected month-end over budget
-- description: The month-end spend projected from the pace so far, as a share of the monthly budget; the rule fires above 1.
SELECT spent_usd / elapsed / $budget_usd AS value
FROM ({{month_pace}})
