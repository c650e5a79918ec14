-- Cross-connector reporting: the rows each connector's staging model holds, one row per model.
-- It reads two connectors' models, so no connector location owns it: dbt_poc builds it.
select 'staging_products' as model_name, count(*) as row_count
from {{ ref('staging_products') }}
union all
select 'staging_faker_users' as model_name, count(*) as row_count
from {{ ref('staging_faker_users') }}
