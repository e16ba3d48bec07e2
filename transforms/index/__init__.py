"""Everything that talks to the search index (Elasticsearch or OpenSearch): the client,
index names, templates, document shapes, bulk writes with retry, the sink steps, the
read-backs, replay and reconciliation. Stages call it; nothing else imports a client
library (an import contract)."""
