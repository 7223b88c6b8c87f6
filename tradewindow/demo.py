"""The demo zone: realistic enterprises across the Chongqing zone's areas, agencies, one user per
role (password "demo", demo mode only), licences and a broker authorisation.

Everything is created through the service functions, so the demo obeys the same rules as users.
Credit codes are made-up but valid (check characters computed); agency codes are illustrative."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine

from tradewindow.platform.auth import SYSTEM, Actor, Role
from tradewindow.platform.db import UnitOfWork
from tradewindow.registry import service as registry
from tradewindow.registry.model import EnterpriseInput

AGENCIES = [
    # code, kind, English, Chinese, parent, location
    ("8000", "customs", "Chongqing Customs", "重庆海关", None, "CNCKG"),
    ("8012", "customs", "Xiyong Customs (comprehensive bonded zone)", "西永海关", "8000", "CNCKG"),
    ("8013", "customs", "Lianglu Cuntan Customs (bonded port area)", "两路寸滩海关", "8000", "CNCKG"),
    ("8014", "customs", "Chongqing Railway Port Customs (Tuanjie Village)", "重庆铁路口岸海关", "8000", "CNTNR"),
    ("8015", "customs", "Guoyuan Port Customs", "果园港海关", "8000", "CNGYP"),
    ("8016", "customs", "Jiangbei Airport Customs", "江北机场海关", "8000", "CNCKG"),
    ("CQ-QUA", "quarantine", "Chongqing Customs Inspection and Quarantine", "重庆海关检验检疫处", None, "CNCKG"),
    ("CQ-COM", "licensing", "Chongqing Municipal Commission of Commerce", "重庆市商务委员会", None, "CNCKG"),
    ("CQ-FTZ", "zone", "China (Chongqing) Pilot Free Trade Zone Administration", "中国（重庆）自由贸易试验区管委会", None, "CNCKG"),
]

ENTERPRISES = [
    # uscc, Chinese, English, area, kinds, credit tier, address, scope
    ("91500115GG37HDHFEA", "重庆长江汽车进口贸易有限公司", "Chongqing Yangtze Auto Import Trading Co., Ltd.",
     "xiyong", ["trader"], "advanced_aeo", "Xiyong Comprehensive Bonded Zone, Shapingba District",
     "Import and sale of parallel-import passenger cars; bonded vehicle exhibition"),
    ("915001302393E0FA6K", "重庆两江电子科技有限公司", "Liangjiang Electronics Technology Co., Ltd.",
     "liangjiang", ["trader"], "general_aeo", "Liangjiang New Area, Yubei District",
     "Manufacture of laptops and tablets under processing trade"),
    ("91500164BBCG2A2HHH", "重庆西永微电子有限公司", "Xiyong Microelectronics Co., Ltd.",
     "xiyong", ["trader"], "general", "Xiyong Microelectronics Industrial Park",
     "Packaging and testing of integrated circuits"),
    ("91500144E490BBED2Q", "重庆渝欧跨境电子商务有限公司", "Yu-Ou Cross-border E-commerce Co., Ltd.",
     "liangjiang", ["platform", "trader"], "general", "Lianglu Cuntan Bonded Port Area",
     "Cross-border e-commerce retail import platform"),
    ("91500169HF3DGFCG83", "重庆山城报关服务有限公司", "Shancheng Customs Brokerage Services Co., Ltd.",
     "yubei", ["broker"], "general_aeo", "Yubei District, Chongqing", "Customs declaration agency"),
    ("91500169FGG0741G3A", "渝新欧（重庆）物流有限公司", "Yuxinou (Chongqing) Logistics Co., Ltd.",
     "shapingba", ["carrier", "logistics"], "advanced_aeo", "Tuanjie Village Rail Hub, Shapingba District",
     "China-Europe Railway Express operation, freight forwarding"),
    ("91500196F4F73EFH8R", "重庆果园港国际物流有限公司", "Guoyuan Port International Logistics Co., Ltd.",
     "liangjiang", ["carrier"], "general", "Guoyuan Port, Jiangbei District", "Yangtze barge and port logistics"),
    ("915001869HGFCD698Y", "重庆长江国际银行分行", "Changjiang International Bank, Chongqing Branch",
     "jiangbei", ["bank"], "general", "Jiangbeizui Financial District, Jiangbei District",
     "Trade finance, letters of credit, pledges of transport documents"),
    ("915001004EGFB68FE7", "重庆跨境支付服务有限公司", "Chongqing Cross-border Payment Services Co., Ltd.",
     "yuzhong", ["payment"], "general", "Jiefangbei, Yuzhong District", "Cross-border payment services"),
    ("91500187DH19AE3EG3", "重庆南岸葡萄酒进口有限公司", "Nan'an Wine Importers Co., Ltd.",
     "nanan", ["trader"], "general", "Nan'an District, Chongqing", "Import of wine and spirits"),
    ("915001475DF28FB36H", "重庆北碚生物医药有限公司", "Beibei Biopharma Co., Ltd.",
     "beibei", ["trader"], "general", "Beibei District, Chongqing", "Import of medicines and medical devices"),
    ("91500162E020EH267X", "重庆九龙铝业有限公司", "Jiulong Aluminium Co., Ltd.",
     "jiulongpo", ["trader"], "discredited", "Jiulongpo District, Chongqing", "Aluminium processing and trade"),
]

CAR_IMPORTER, ELECTRONICS, _, PLATFORM, BROKER, RAIL, _, BANK, PAYMENT = (e[0] for e in ENTERPRISES[:9])

USERS = [
    # username, role, display name, enterprise uscc, agency code
    ("trader", Role.TRADER, "Li Wei (Yangtze Auto Import)", CAR_IMPORTER, None),
    ("broker", Role.BROKER, "Zhang Min (Shancheng Brokerage)", BROKER, None),
    ("customs", Role.CUSTOMS, "Officer Chen (Xiyong Customs)", None, "8012"),
    ("quarantine", Role.QUARANTINE, "Officer Wang (Inspection and Quarantine)", None, "CQ-QUA"),
    ("licensing", Role.LICENSING, "Officer Liu (Commission of Commerce)", None, "CQ-COM"),
    ("zone", Role.ZONE, "Zhao Hong (FTZ Administration)", None, "CQ-FTZ"),
    ("bank", Role.BANK, "Sun Jie (Changjiang International Bank)", BANK, None),
    ("carrier", Role.CARRIER, "Huang Lei (Yuxinou Logistics)", RAIL, None),
    ("platform", Role.PLATFORM, "Zhou Yan (Yu-Ou E-commerce)", PLATFORM, None),
    ("payment", Role.PAYMENT, "Wu Fang (Cross-border Payment)", PAYMENT, None),
    ("logistics", Role.LOGISTICS, "Ma Jun (Yuxinou Logistics)", RAIL, None),
    ("admin", Role.ADMIN, "Administrator", None, None),
    ("electronics", Role.TRADER, "Chen Jing (Liangjiang Electronics)", ELECTRONICS, None),
    ("wine", Role.TRADER, "Deng Li (Nan'an Wine Importers)", "91500187DH19AE3EG3", None),
    ("aluminium", Role.TRADER, "Pan Tao (Jiulong Aluminium)", "91500162E020EH267X", None),
    ("bonded", Role.TRADER, "Xu Ning (Yu-Ou bonded warehouse)", PLATFORM, None),
]


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: str
    description: str


def demo_accounts() -> list[DemoAccount]:
    return [DemoAccount(u, r.value, d) for u, r, d, _, _ in USERS]


def is_loaded(engine: Engine) -> bool:
    uow = UnitOfWork(engine)
    return registry.agency_by_code(uow, "8000") is not None


def load_demo(engine: Engine) -> None:
    """Load the demo zone into an empty, migrated database."""
    uow = UnitOfWork(engine)
    with uow.transaction():
        for code, kind, name_en, name_zh, parent, location in AGENCIES:
            registry.create_agency(uow, SYSTEM, code, kind, name_en, name_zh, parent, location)
        zone_staff = Actor(user_id=None, username="demo-loader", role=Role.ZONE)
        for uscc, name_zh, name_en, sector, kinds, tier, address, scope in ENTERPRISES:
            registry.register_enterprise(uow, zone_staff, EnterpriseInput(
                uscc=uscc, name_zh=name_zh, name_en=name_en, address=address, sector=sector,
                business_scope=scope, kinds=tuple(kinds), credit_tier=tier))
        for username, role, display_name, uscc, agency in USERS:
            registry.create_user(uow, SYSTEM, username, "demo", role.value, display_name,
                                 enterprise_uscc=uscc, agency_code=agency, is_demo=True)
        _licences(uow)
        trader = _actor_of(uow, "trader")
        registry.authorise_broker(uow, trader, BROKER, valid_from=date(2025, 1, 1))
    _extend(engine)


def _licences(uow: UnitOfWork) -> None:
    officer = Actor(user_id=None, username="demo-loader", role=Role.LICENSING)
    year = date.today().year
    for uscc, licence_type, number, issuer in [
        (CAR_IMPORTER, "automatic_import_licence", f"{year % 100}-AIL-500-000127", "Ministry of Commerce"),
        (CAR_IMPORTER, "bonded_warehouse", "CQ-BW-2024-0031", "Chongqing Customs"),
        (CAR_IMPORTER, "automatic_import_licence", "DEMO-AIL-0001", "Ministry of Commerce"),
        (PLATFORM, "cbec_enterprise", "CBEC-500-2023-0008", "Chongqing Customs"),
        (BROKER, "customs_broker", "CB-8000-2019-0412", "Chongqing Customs"),
        ("91500187DH19AE3EG3", "food_import_registration", "FIR-500-2022-1187", "Chongqing Customs"),
    ]:
        registry.record_licence(uow, officer, uscc, licence_type, number, issuer,
                                valid_from=date(year - 1, 1, 1), valid_to=date(year + 1, 12, 31))


def _actor_of(uow: UnitOfWork, username: str) -> Actor:
    user = next(u for u in registry.list_users(uow, SYSTEM) if u["username"] == username)
    return Actor(user_id=user["id"], username=username, role=Role(user["role"]),
                 enterprise_id=user["enterprise_id"], agency_id=user["agency_id"])


def _extend(engine: Engine) -> None:
    """What later contexts add to the demo: the tariff schedule, lane rules, declarations."""
    from tradewindow.demo_history import load_demo_history
    from tradewindow.tariff import service as tariff

    uow = UnitOfWork(engine)
    tariff.load_demo_schedule(uow, SYSTEM)
    _lane_rules(uow)
    actors = {name: _actor_of(uow, name) for name in
              ("trader", "broker", "electronics", "wine", "aluminium", "customs", "quarantine", "licensing")}
    _bonded(engine, actors)
    load_demo_history(engine, {**actors, "trader_uscc": CAR_IMPORTER})
    _transport(engine, uow, actors)


def _bonded(engine: Engine, actors: dict[str, Actor]) -> None:
    """The car importer's bonded vehicle warehouse and the electronics maker's processing book
    (before the declaration history, so that relaying the release events moves few other events
    along)."""
    from tradewindow.demo_bonded import load_demo_bonded, load_demo_processing

    load_demo_bonded(engine, actors)
    load_demo_processing(engine, actors)
    from tradewindow.demo_cbec import load_demo_cbec_bonded

    uow = UnitOfWork(engine)
    load_demo_cbec_bonded(engine, {**actors, **{name: _actor_of(uow, name) for name in
                                                ("bonded", "platform", "payment", "logistics")}})


def _transport(engine: Engine, uow: UnitOfWork, actors: dict[str, Actor]) -> None:
    """Bills of lading in every state, a declaration held for its bill, consignments and events."""
    from tradewindow.demo_transport import Parties, load_demo_transport

    usccs = {e[2]: e[0] for e in ENTERPRISES}
    parties = Parties(car_importer=CAR_IMPORTER, electronics=ELECTRONICS,
                      microelectronics=usccs["Xiyong Microelectronics Co., Ltd."],
                      aluminium=usccs["Jiulong Aluminium Co., Ltd."], carrier=RAIL,
                      barge_operator=usccs["Guoyuan Port International Logistics Co., Ltd."], bank=BANK)
    load_demo_transport(engine, {**actors, "carrier": _actor_of(uow, "carrier"), "bank": _actor_of(uow, "bank")},
                        parties)


def _lane_rules(uow: UnitOfWork) -> None:
    from tradewindow.customs import service as customs

    officer = _actor_of(uow, "customs")
    for office, definition in [
        ("*", {"name": "Passenger cars: valuation check", "lane": "yellow", "probability": 0.25,
               "conditions": {"tariff_prefixes": ["8703"]}}),
        ("*", {"name": "Aluminium from a market under anti-dumping watch", "lane": "red", "probability": 0.3,
               "conditions": {"tariff_prefixes": ["7601"], "origins": ["RU", "IN"]}}),
        ("*", {"name": "First declaration of a trader", "lane": "yellow", "probability": 0.5,
               "conditions": {"first_declaration": True}}),
        ("8013", {"name": "Food and drink: documents", "lane": "yellow", "probability": 0.15,
                  "conditions": {"tariff_prefixes": ["2204", "0402"]}}),
    ]:
        customs.save_lane_profile(uow, officer, office, definition)
