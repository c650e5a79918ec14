-- Products from the cache with snake_case names. The cache lowercases column names
-- (discountPercentage -> discountpercentage), keeps nested objects and arrays as json(b), and
-- keeps keys inside them in camelCase; `::jsonb` works whether the column is json or jsonb.
with source as (
    select * from {{ source('sample_connector', 'products') }}
)

select
    id as product_id,
    title,
    description,
    category,
    brand,
    sku,
    price::numeric(12, 2) as price,
    discountpercentage::numeric(5, 2) as discount_percentage,
    rating::numeric(3, 2) as rating,
    stock,
    weight,
    availabilitystatus as availability_status,
    warrantyinformation as warranty_information,
    shippinginformation as shipping_information,
    returnpolicy as return_policy,
    minimumorderquantity as minimum_order_quantity,
    (dimensions::jsonb ->> 'width')::numeric as width,
    (dimensions::jsonb ->> 'height')::numeric as height,
    (dimensions::jsonb ->> 'depth')::numeric as depth,
    (meta::jsonb ->> 'createdAt')::timestamptz as created_at,
    (meta::jsonb ->> 'updatedAt')::timestamptz as updated_at,
    meta::jsonb ->> 'barcode' as barcode,
    tags::jsonb as tags,
    images::jsonb as images,
    thumbnail,
    _airbyte_extracted_at as extracted_at,
    current_timestamp as dbt_loaded_at
from source
