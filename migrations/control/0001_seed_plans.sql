-- The three plans every tenant is on one of; limits are enforced from the limits issue on.
INSERT INTO `plans` (`id`, `name`, `requests_per_minute`, `monthly_tokens`, `seats`, `projects`, `storage_bytes`) VALUES
  ('free', 'Free', 120, 200000, 5, 10, 1073741824),
  ('pro', 'Pro', 1200, 5000000, 25, 100, 53687091200),
  ('enterprise', 'Enterprise', 12000, 100000000, 1000, 10000, 1099511627776);
