"""Cross-border e-commerce: orders, payments, waybills, matching, 70 % tax, buyer limits."""
