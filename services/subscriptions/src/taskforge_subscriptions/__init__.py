"""TaskForge Billing subscriptions service."""
