-- imagen on Supabase: what the imagen-supabase plugin writes to, and who may read it.
--
--   imagen.images       one row per uploaded image (the plugin's cloud sync)
--   mai.imagen_usage    one row per generation, failed ones too (the usage rows)
--   imagen-generated    the private Storage bucket holding the images
--
-- Apply it once per project, in the SQL editor or with
--   imagen supabase schema | psql "$DATABASE_URL" -v ON_ERROR_STOP=1
-- It is safe to run again: nothing that exists is dropped or changed, except the
-- policies below, which are recreated as written here.
--
-- Then expose both schemas to the Data API: Dashboard > Project Settings >
-- Data API > Exposed schemas: add `imagen` and `mai`. Until then every request
-- of the plugin answers 406 PGRST106.
--
-- The plugin uses the service_role (or an sb_secret_) key: it bypasses row-level
-- security but still needs the grants below. The columns are exactly the keys the
-- plugin sends (a test applies this file to PostgreSQL and compares).

begin;

create schema if not exists imagen;
create schema if not exists mai;

-- ------------------------------------------------------------------ imagen.images

create table if not exists imagen.images (
    id             uuid primary key default gen_random_uuid(),  -- made by the plugin: retries insert once
    created_at     timestamptz not null default now(),          -- when the generation started
    owner_user_id  uuid not null references auth.users (id) on delete cascade,
    prompt         text not null,                               -- as given, before any style
    prompt_sha256  text not null check (prompt_sha256 ~ '^[0-9a-f]{64}$'),
    backend        text not null,                               -- instance name in imagen.yaml
    backend_type   text not null,                               -- comfyui, replicate, mock, ...
    model          text not null,
    seed           numeric(20, 0) not null check (seed >= 0),   -- up to 2^64-1: more than bigint
    steps          integer check (steps > 0),                   -- null when the backend did not say
    width          integer not null check (width > 0),
    height         integer not null check (height > 0),
    latency_s      double precision,
    cost_usd       numeric(12, 6),                              -- estimate; null when unknown
    mime_type      text not null,
    bucket         text not null,
    storage_path   text not null,                               -- <YYYY-MM-DD>/<slug>-<seed>.png
    sidecar        jsonb not null,                              -- the local JSON sidecar, whole
    tags           text[] not null default '{}',                -- for the viewer to fill in
    unique (bucket, storage_path)
);

create index if not exists images_owner_created_at on imagen.images (owner_user_id, created_at desc);
create index if not exists images_tags on imagen.images using gin (tags);

-- ------------------------------------------------------------------ mai.imagen_usage

-- The same fields as imagen's local ledger (imagen usage): the prompt's hash, never the prompt.
create table if not exists mai.imagen_usage (
    id             uuid primary key default gen_random_uuid(),  -- made by the plugin: retries insert once
    created_at     timestamptz not null,                        -- when the generation started (UTC)
    backend        text not null,
    backend_type   text not null,
    model          text,                                        -- null when the backend failed
    latency_s      double precision,
    cost_usd       numeric(12, 6),
    prompt_sha256  text not null check (prompt_sha256 ~ '^[0-9a-f]{64}$'),
    caller         text not null,                               -- IMAGEN_CALLER, MAI_FROM_ID, @mai-name, user
    status         text not null check (status in ('ok', 'failed')),
    error          text,
    cost_basis     text check (cost_basis in ('billed', 'computed', 'estimated'))
);
-- Tables made by an older imagen gain the column; safe to run on a live table
-- (adding a nullable column rewrites nothing).
alter table mai.imagen_usage add column if not exists cost_basis text
    check (cost_basis in ('billed', 'computed', 'estimated'));

-- imagen usage --source supabase filters on created_at and pages in (created_at, id) order.
create index if not exists imagen_usage_created_at on mai.imagen_usage (created_at, id);

-- ------------------------------------------------------------------ grants

-- service_role: what the plugin does (insert; read the usage back). anon: nothing.
-- authenticated: reads its own images and edits their tags (the viewer).
grant usage on schema imagen to authenticated, service_role;
grant select, insert, update, delete on imagen.images to service_role;
grant select on imagen.images to authenticated;
grant update (tags) on imagen.images to authenticated;
revoke all on imagen.images from anon;

grant usage on schema mai to service_role;
grant select, insert on mai.imagen_usage to service_role;
revoke all on mai.imagen_usage from anon, authenticated;

-- ------------------------------------------------------------------ row-level security

alter table imagen.images enable row level security;

-- (select auth.uid()) rather than auth.uid(): evaluated once per query, not per row.
drop policy if exists "owners read their images" on imagen.images;
create policy "owners read their images" on imagen.images
    for select to authenticated
    using (owner_user_id = (select auth.uid()));

drop policy if exists "owners tag their images" on imagen.images;
create policy "owners tag their images" on imagen.images
    for update to authenticated
    using (owner_user_id = (select auth.uid()))
    with check (owner_user_id = (select auth.uid()));

-- Usage rows belong to no user (the caller is a name, not an account): with RLS on
-- and no policy, only service_role (which bypasses RLS) sees them, even if someone
-- grants the table to the API roles later.
alter table mai.imagen_usage enable row level security;

-- ------------------------------------------------------------------ storage

-- Private: objects are reached with the service key or a signed URL, never publicly.
insert into storage.buckets (id, name, public, allowed_mime_types)
values ('imagen-generated', 'imagen-generated', false, array['image/png', 'image/jpeg', 'image/webp'])
on conflict (id) do nothing;

-- A signed-in user may read (and so sign URLs for) the objects of their own image rows.
drop policy if exists "imagen owners read their images" on storage.objects;
create policy "imagen owners read their images" on storage.objects
    for select to authenticated
    using (
        bucket_id = 'imagen-generated'
        and exists (
            select 1 from imagen.images i
            where i.bucket = storage.objects.bucket_id
              and i.storage_path = storage.objects.name
              and i.owner_user_id = (select auth.uid())
        )
    );

commit;

-- PostgREST caches the schema: have it see the new tables now.
notify pgrst, 'reload schema';
