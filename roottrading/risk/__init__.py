"""Risk rules (rules.yaml schema) and the pure evaluation core used by the risk manager service."""

from roottrading.risk.engine import OrderIntent, RiskDecision, RiskEngine, RuleStatus
from roottrading.risk.rules import RiskRules, RulesError, default_rules_path, load_rules, parse_rules
from roottrading.risk.state import RiskState, StateTracker

__all__ = [
    "OrderIntent",
    "RiskDecision",
    "RiskEngine",
    "RiskRules",
    "RiskState",
    "RuleStatus",
    "RulesError",
    "StateTracker",
    "default_rules_path",
    "load_rules",
    "parse_rules",
]
