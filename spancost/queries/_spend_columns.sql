-- The columns of a spend table over groups summed with {{call_totals}}: spend, its share, calls, tokens.
cost_usd,
    if(sum(cost_usd) OVER () = 0, 0, toFloat64(cost_usd / sum(cost_usd) OVER ())) AS share,
    calls,
    input_tokens,
    output_tokens
