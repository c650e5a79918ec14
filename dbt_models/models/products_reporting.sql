-- One row per product with the figures the catalogue report needs.
select
    product_id,
    title,
    category,
    brand,
    price,
    discount_percentage,
    round(price * (1 - discount_percentage / 100), 2) as discounted_price,
    rating,
    stock,
    availability_status,
    stock = 0 as is_out_of_stock,
    jsonb_array_length(coalesce(tags, '[]'::jsonb)) as tag_count,
    created_at,
    updated_at
from {{ ref('staging_products') }}
