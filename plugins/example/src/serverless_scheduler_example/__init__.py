"""The smallest complete Serverless Scheduler plugin: one job type, one consumer."""
