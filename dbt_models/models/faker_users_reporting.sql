-- One row per user, with the age band and email domain the user report groups by.
select
    user_id,
    full_name,
    email_domain,
    age,
    case
        when age < 18 then 'under 18'
        when age < 30 then '18-29'
        when age < 50 then '30-49'
        when age < 65 then '50-64'
        else '65+'
    end as age_band,
    nationality,
    city,
    country_code,
    created_at as signed_up_at
from {{ ref('staging_faker_users') }}
