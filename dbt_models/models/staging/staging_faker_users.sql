-- Faker users with the nested address flattened; `::jsonb` works for json and jsonb columns.
with source as (
    select * from {{ source('faker', 'users') }}
)

select
    id as user_id,
    name as full_name,
    title,
    age,
    email,
    lower(split_part(email, '@', 2)) as email_domain,
    gender,
    nationality,
    occupation,
    academic_degree,
    (address::jsonb ->> 'city') as city,
    (address::jsonb ->> 'state') as state,
    (address::jsonb ->> 'country_code') as country_code,
    (address::jsonb ->> 'postal_code') as postal_code,
    created_at::timestamptz as created_at,
    updated_at::timestamptz as updated_at,
    _airbyte_extracted_at as extracted_at,
    current_timestamp as dbt_loaded_at
from source
