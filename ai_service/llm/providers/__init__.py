"""Provider adapters. Each imports its SDK only when first used, never at import time."""
