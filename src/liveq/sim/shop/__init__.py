"""The e-commerce scenario (`liveq/Ecommerce-v0`): config, batched core and envs."""

from liveq.sim.shop.config import EcommerceConfig, ShopRewards
from liveq.sim.shop.core import ShopCore
from liveq.sim.shop.env import ECOMMERCE_ID, EcommerceEnv, EcommerceVectorEnv, register_ecommerce

__all__ = ["ECOMMERCE_ID", "EcommerceConfig", "EcommerceEnv", "EcommerceVectorEnv",
           "ShopCore", "ShopRewards", "register_ecommerce"]
