-- The job queue of imagen-postgres: the table imagen.jobs, its indexes, and the
-- trigger that wakes idle workers (NOTIFY imagen_jobs) whenever a job becomes
-- queued, whoever inserted it: `imagen submit`, a script, or a web app's INSERT;
-- and imagen.inputs, the input images of jobs, stored once per sha256.
--
-- `imagen queue init` applies this file; so can you, once per database:
--     psql "$IMAGEN_DATABASE_URL" -v ON_ERROR_STOP=1 -f schema.sql
-- It is safe to run again (and on a live queue): it creates what is missing and
-- replaces the functions, and never drops or rewrites rows. For a schema other
-- than the default, print the file for it with
--     python -m imagen_postgres.schema --schema NAME
--
-- Needs PostgreSQL 13 or newer (gen_random_uuid() is built in from 13), and a
-- role that may create schemas (the queue's owner; on Supabase, `postgres`).

begin;

-- Two `imagen queue init` at once must not race each other's CREATE TABLE; the
-- lock is held until COMMIT.
do $$ begin perform pg_advisory_xact_lock(hashtext('imagen.jobs')); end $$;

create schema if not exists imagen;

-- ------------------------------------------------------------------ request validation

-- True when v is absent, or a JSON whole number (no fraction, no exponent left
-- after jsonb's normalisation) between lo and hi. The CASE keeps the cast from
-- ever seeing a non-number: AND gives no evaluation order in SQL.
create or replace function imagen.json_whole_between(v jsonb, lo numeric, hi numeric)
returns boolean
language sql immutable
as $$
    select v is null or case
        when jsonb_typeof(v) = 'number' and (v #>> '{}') ~ '^[0-9]+$'
            then (v #>> '{}')::numeric between lo and hi
        else false
    end
$$;

-- A request's input images: absent, null, or a list of {sha256, role, source}
-- (role "image" when absent; source a path or null), at most one "image", which
-- comes before the references, and at most one "mask", which needs the image.
-- Each sha256 names a row of imagen.inputs (inserted before the job).
create or replace function imagen.valid_inputs(a jsonb)
returns boolean
language sql immutable
as $$
    select case
        when a is null or jsonb_typeof(a) = 'null' then true
        when jsonb_typeof(a) <> 'array' then false
        when exists (
            select 1 from jsonb_array_elements(a) e
            where case
                when jsonb_typeof(e) <> 'object' then true
                when (e - array['sha256', 'role', 'source']) <> '{}'::jsonb then true
                when jsonb_typeof(e -> 'sha256') is distinct from 'string' then true
                when (e ->> 'sha256') !~ '^[0-9a-f]{64}$' then true
                when e ? 'role' and (jsonb_typeof(e -> 'role') <> 'string'
                    or (e ->> 'role') not in ('image', 'reference', 'mask')) then true
                when e ? 'source' and jsonb_typeof(e -> 'source') not in ('string', 'null')
                    then true
                else false
            end
        ) then false
        else (
            select count(*) filter (where role = 'image') <= 1
                and count(*) filter (where role = 'mask') <= 1
                and (count(*) filter (where role = 'mask') = 0
                     or count(*) filter (where role = 'image') = 1)
                -- the image comes first among the image and the references
                and coalesce(min(n) filter (where role = 'image'), 0)
                    < coalesce(min(n) filter (where role = 'reference'), 2147483647)
            from (
                select coalesce(e ->> 'role', 'image') as role, n
                from jsonb_array_elements(a) with ordinality as t(e, n)
            ) as roles
        )
    end
$$;

-- A request as imagen's Request accepts it (imagen_core.models.Request; a test
-- keeps the two in step): a web app that inserts a bad one gets the error at
-- INSERT time, not a failed job later. Only prompt is required.
create or replace function imagen.valid_request(r jsonb)
returns boolean
language sql immutable
as $$
    select case
        when jsonb_typeof(r) is distinct from 'object' then false
        -- no keys besides these (a misspelt "widht" would otherwise be ignored)
        when (r - array['prompt', 'negative', 'width', 'height', 'seed', 'steps',
                        'style', 'extra', 'backend', 'inputs', 'strength']) <> '{}'::jsonb
            then false
        when jsonb_typeof(r -> 'prompt') is distinct from 'string' then false
        when btrim(r ->> 'prompt', E' \t\n\r\f\v') = '' then false
        else coalesce(jsonb_typeof(r -> 'negative') = 'string', true)
            and coalesce(jsonb_typeof(r -> 'style') in ('string', 'null'), true)
            and coalesce(jsonb_typeof(r -> 'backend') in ('string', 'null'), true)
            and coalesce(jsonb_typeof(r -> 'extra') = 'object', true)
            and imagen.json_whole_between(r -> 'width', 1, 8192)
            and imagen.json_whole_between(r -> 'height', 1, 8192)
            and imagen.json_whole_between(r -> 'seed', 0, 18446744073709551615)
            and imagen.json_whole_between(r -> 'steps', 0, 10000)
            and case
                when jsonb_typeof(r -> 'strength') = 'number'
                    then (r ->> 'strength')::numeric between 0 and 1
                else coalesce(jsonb_typeof(r -> 'strength') = 'null', true)
            end
            and imagen.valid_inputs(r -> 'inputs')
    end
$$;

-- ------------------------------------------------------------------ wake-ups

-- One NOTIFY per job that becomes queued (new, retried after a failure, or given
-- back by a worker shutting down). The payload is the job's backend, for people
-- watching with LISTEN; workers only need to know that something changed.
-- PostgreSQL folds identical notifications of one transaction into one, so a
-- bulk INSERT wakes each worker once per backend, not once per row.
create or replace function imagen.notify_job()
returns trigger
language plpgsql
as $$
begin
    perform pg_notify('imagen_jobs', new.backend);
    return null;
end
$$;

-- ------------------------------------------------------------------ imagen.jobs

-- Created in one block when missing, so that running this file again takes no
-- lock on a table the workers are using.
do $block$
begin
    if to_regclass('imagen.jobs') is not null then
        return;
    end if;

    create table imagen.jobs (
        id           uuid primary key default gen_random_uuid(),
        -- insertion order: claims take the lowest first (created_at can tie,
        -- e.g. for rows inserted in one transaction). Never set it.
        seq          bigint generated always as identity unique,
        request      jsonb not null constraint jobs_request_valid check (imagen.valid_request(request)),
        backend      text not null constraint jobs_backend_named check (backend <> ''),
        status       text not null default 'queued' constraint jobs_status_known
                         check (status in ('queued', 'running', 'done', 'failed', 'canceled')),
        attempts     integer not null default 0 check (attempts >= 0),
        max_attempts integer not null default 3 check (max_attempts >= 1),
        created_at   timestamptz not null default now(),
        updated_at   timestamptz not null default now(),
        worker       text,
        lease_until  timestamptz,
        result_path  text,
        error        text,
        metadata     jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
        constraint jobs_running_has_lease
            check (status <> 'running' or (worker is not null and lease_until is not null))
    );

    -- Claiming walks this small index (only live jobs are in it) in queue order.
    create index jobs_claimable on imagen.jobs (seq) where status in ('queued', 'running');
    -- `imagen jobs --status failed`, newest first.
    create index jobs_status_seq on imagen.jobs (status, seq);

    create trigger jobs_notify
        after insert or update of status on imagen.jobs
        for each row when (new.status = 'queued')
        execute function imagen.notify_job();

    -- Row-level security on and no policy: only the table's owner (the role that
    -- ran this file, which the workers use), superusers and roles with BYPASSRLS
    -- (Supabase's service_role) see rows. Another role needs a grant and a policy.
    alter table imagen.jobs enable row level security;

    comment on table imagen.jobs is
        'imagen job queue (imagen-postgres). Insert (request, backend) to submit a job.';
    comment on column imagen.jobs.request is
        'prompt (required), negative, width, height, seed, steps, style, extra, strength, inputs';
    comment on column imagen.jobs.backend is
        'backend instance of the workers'' imagen.yaml that runs the job';
    comment on column imagen.jobs.lease_until is
        'a running job whose lease passed is claimed again (its worker died), or failed once it has had max_attempts';
end
$block$;

-- A worker with model affinity looks up the oldest queued job of the backend it
-- ran last: this index answers that at once, however many jobs are queued.
-- Added to a queue made before it existed, once (a brief lock on new jobs
-- while it is built: only queued rows are in it).
do $block$
begin
    if to_regclass('imagen.jobs_queued_backend') is null then
        create index jobs_queued_backend on imagen.jobs (backend, seq) where status = 'queued';
    end if;
end
$block$;

-- ------------------------------------------------------------------ imagen.inputs

-- The input images of jobs, one row per image content: a job's request names
-- them by sha256 in "inputs". Insert the image first, then the job, in one
-- transaction (docs/worker.md shows it); whatever ends a job deletes its images
-- that no queued or running job needs any more. Added by `imagen queue init` to
-- a queue made before it existed: a new table, so the jobs are not touched.
do $block$
begin
    if to_regclass('imagen.inputs') is not null then
        return;
    end if;

    create table imagen.inputs (
        sha256    text primary key
                      constraint inputs_sha256_of_data check (sha256 = encode(sha256(data), 'hex')),
        data      bytea not null
                      constraint inputs_size check (octet_length(data) between 1 and 52428800),
        stored_at timestamptz not null default now()
    );

    -- As for imagen.jobs: only the owner (the workers' role) and roles that
    -- bypass row-level security see rows; a web app needs a grant and a policy.
    alter table imagen.inputs enable row level security;

    comment on table imagen.inputs is
        'imagen job queue (imagen-postgres): input images of jobs by sha256; insert before the job.';
    comment on column imagen.inputs.sha256 is
        'encode(sha256(data), ''hex''): what a job''s request names in inputs[].sha256';
end
$block$;

commit;
