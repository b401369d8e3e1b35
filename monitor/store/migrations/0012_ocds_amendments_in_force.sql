-- An OCDS amendment records a change made to the contract, so it is in force: loading now stores it
-- with status 'active', as ProZorro calls a change in force. Earlier versions left the status empty,
-- and every rule that reads the changes in force (contract value raised by amendments, sas24-3-4,
-- ari-1-1, ari-1-2) never saw an OCDS contract's amendments. The changes of OCDS processes (raw keys of
-- a compiled release, a record or a set of releases) get the status here; ProZorro's own changes
-- always carry theirs.
UPDATE contract_changes SET status = 'active'
WHERE status IS NULL AND split_part(raw_key, ':', 2) IN ('compiled_release', 'record', 'release_set');
