"""What the demo's organization buys: licensed products, their license groups and prices.

Six Microsoft 365 add-ons, each granted by one license group, chosen so the demo meets
every situation the Entra ID workflow must handle:

- four groups mastered in Entra ID (cloud groups): removals go through Graph;
- one group synchronised from on-premises AD (``onPremisesSyncEnabled``): Graph refuses
  to change it, so its removals fail and tell the admin to use the ``onprem_ad`` workflow;
- one dynamic group (membership rule on the department): never written to, reported.

Prices are list prices per user and month in USD, rounded. SKU ids are generated
(a stable UUID per part number), not Microsoft's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

_SKU_NAMESPACE = uuid.UUID("3b0f4a52-8d0e-4c1e-9a57-0d5e2f6c7b19")

DOMAIN = "contoso-demo.example"
PARTNER_DOMAINS = ("fabrikam.example", "northwind.example", "adatum.example")
DEPARTMENTS = (
    ("Sales", 0.16),
    ("Engineering", 0.24),
    ("Finance", 0.10),
    ("Marketing", 0.10),
    ("Operations", 0.14),
    ("Support", 0.14),
    ("Human Resources", 0.06),
    ("Legal", 0.06),
)
BACKGROUND_APP = "OUTLOOK.EXE"  # everyday use that shows a person is observed at all


@dataclass(frozen=True)
class Product:
    """One licensed product: its SKU, license group, price and how people use it."""

    name: str  # the policy name
    sku: str  # skuPartNumber
    apps: tuple[str, ...]
    seat_cost: str  # per user and month, USD
    group: str  # the license group's display name
    share: float  # share of people holding it (ignored for the dynamic group)
    unused_days: int = 30
    underuse_minutes: int | None = None  # the floor over 90 days, when judged
    on_no_response: Literal["release", "keep"] = "release"
    kind: Literal["cloud", "synced", "dynamic"] = "cloud"
    dynamic_department: str | None = None  # dynamic groups: the rule's department
    seasonal_share: float = 0.0  # holders who work in quarterly bursts
    direct_share: float = 0.0  # holders who also have the SKU assigned directly

    @property
    def sku_id(self) -> str:
        """A stable, generated skuId for the part number."""
        return str(uuid.uuid5(_SKU_NAMESPACE, self.sku))

    @property
    def rule(self) -> str | None:
        """The dynamic group's membership rule."""
        if self.dynamic_department is None:
            return None
        return f'(user.department -eq "{self.dynamic_department}")'


PRODUCTS = (
    Product(
        "Visio Plan 2",
        "VISIOCLIENT",
        ("VISIO.EXE", "Microsoft Visio"),
        "15.00",
        "LIC-Visio-Plan2",
        0.14,
        direct_share=0.03,
    ),
    Product(
        "Power BI Pro",
        "POWER_BI_PRO",
        ("PBIDesktop.exe", "Power BI"),
        "14.00",
        "LIC-PowerBI-Pro",
        0.30,
        seasonal_share=0.10,
    ),
    Product(
        "Microsoft 365 Copilot",
        "Microsoft_365_Copilot",
        ("Microsoft 365 Copilot", "M365Copilot.exe"),
        "30.00",
        "LIC-M365-Copilot",
        0.18,
        underuse_minutes=120,
        on_no_response="keep",
    ),
    Product(
        "Power Apps Premium",
        "POWERAPPS_PER_USER",
        ("Power Apps", "PowerApps.exe"),
        "20.00",
        "LIC-PowerApps-Premium",
        0.07,
        unused_days=60,
    ),
    Product(
        "Project Plan 3",
        "PROJECTPROFESSIONAL",
        ("WINPROJ.EXE", "Microsoft Project"),
        "30.00",
        "LIC-Project-Plan3",
        0.06,
        unused_days=45,
        kind="synced",
    ),
    Product(
        "Teams Premium",
        "Microsoft_Teams_Premium",
        ("Teams Premium",),
        "10.00",
        "LIC-Teams-Premium-Sales",
        0.0,
        kind="dynamic",
        dynamic_department="Sales",
    ),
)

# Groups that grant nothing but make the directory look like a real hybrid one.
OTHER_GROUPS = (
    ("GG-All-Staff", "synced"),
    ("GG-Finance-Reporting", "synced"),
    ("Project Phoenix Team", "cloud"),
)

FIRST = (
    "ada",
    "alan",
    "amara",
    "anna",
    "ben",
    "bilal",
    "carla",
    "chen",
    "dan",
    "dana",
    "eva",
    "elif",
    "finn",
    "fatima",
    "grace",
    "gus",
    "hugo",
    "hana",
    "ines",
    "ivan",
    "jon",
    "jia",
    "kara",
    "kofi",
    "liam",
    "lena",
    "mia",
    "mateo",
    "nils",
    "nora",
    "olga",
    "omar",
    "paul",
    "priya",
    "quinn",
    "rosa",
    "raj",
    "sam",
    "sofia",
    "tara",
    "tomas",
    "uma",
    "vic",
    "wen",
    "xavi",
    "yara",
    "yusuf",
    "zoe",
)
LAST = (
    "adams",
    "baker",
    "chen",
    "diaz",
    "evans",
    "fox",
    "garcia",
    "hill",
    "ito",
    "jones",
    "khan",
    "lee",
    "moreau",
    "novak",
    "okafor",
    "patel",
    "quist",
    "rossi",
    "silva",
    "tanaka",
    "ueda",
    "varga",
    "weber",
    "young",
    "zhou",
    "nakamura",
    "o'connor",
    "schmidt",
    "kowalski",
    "andersen",
)
