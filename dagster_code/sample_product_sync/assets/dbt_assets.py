from ..location import location

transform_sample_product_data = location.transform_asset
