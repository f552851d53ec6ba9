"""Prompt-injection and jailbreak scoring: weighted phrase signals combined by noisy-OR.

Each signal is a family (instruction_override, system_prompt_extraction, roleplay_escape,
developer_mode, policy_bypass, role_spoofing, exfiltration, obfuscation) and two weights: one for
direct input (user messages) and one for indirect input (tool results, retrieved documents),
because "send the history to x@y.z" is a normal user request but an attack inside a web page.
The score is 1 - Π(1 - wᵢ) over the distinct signals found in any view of the text, so one strong
signal ("ignore all previous instructions") blocks alone and weak ones ("stay in character",
"no restrictions") only together. Overlapping matches are one piece of evidence (only the strongest
counts); a phrase inside quotes weighs half (it is more often discussed than meant); a strong signal
seen only after decoding or folding adds `obfuscated_instructions`, and any text hidden in Unicode
tag characters blocks on its own. English only: other languages need external moderation.

Speed: Python's regex engine tries an alternation at every position, so no pattern is run over the
whole text. The text is split once into a set of words (bytes-level, in C); a signal is tried only
if its anchor words and required words are all present, and then only anchored at each occurrence
of an anchor. A benign 4 KB prompt costs one split and a few set operations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from deepseek_gateway.safety.normalize import Views

_DET = r"(?:(?:all|any|every|each)\s+(?:of\s+)?)?(?:(?:the|your|these|those|its|such)\s+)?"
_PRIOR = r"(?:previous|prior|preceding|above|earlier|former|initial|original|system|safety)"
_RULES = (r"(?:instructions?|directions?|directives?|prompts?|rules|guidelines|commands?|constraints|restrictions|"
          r"programming|polic(?:y|ies)|orders|guardrails|safeguards|filters|training|protocols?)")
_VERB_IGNORE = (r"(?:ignore|ignoring|disregard|forget|override|overrule|bypass|neglect|discard|abandon|"
                r"set\s+aside|do\s+not\s+follow|don'?t\s+follow|stop\s+following|skip)")
_LIMITS = (r"(?:restrictions?|limits|limitations|filters?|filtering|rules|guidelines|ethics|ethical|morals?|moral|"
           r"censorship|censored|boundaries|constraints|confines|polic(?:y|ies)|safeguards|guardrails|principles)")
_NEGATE = (r"(?:no|without|free\s+(?:from|of)|(?:not|never)\s+(?:be\s+)?(?:bound|restricted|limited|subject|held|"
           r"constrained)\s+(?:by|to)|unbound\s+by|outside|beyond|exempt\s+from|devoid\s+of|lacks?|"
           r"broken?\s+free\s+(?:of|from)|freed\s+from|(?:does|do|doesn'?t|don'?t|won'?t|will|never)\s+(?:not\s+)?"
           r"(?:have\s+to\s+|need\s+to\s+)?(?:have|follow|obey|respect|adhere\s+to|abide\s+by|comply\s+with|"
           r"care\s+(?:about|for)))")
_AI = r"(?:ai|assistant|chatbot|llm|language\s+model|model|gpt|chatgpt|claude|copilot|agent|bot)"


_VERBS_IGNORE = ("ignore ignoring disregard disregarding forget override overrule bypass neglect discard abandon "
                 "skip set follow following")
_RULE_WORDS = ("instructions instruction directions direction directives directive prompts prompt rules guidelines "
               "commands command constraints restrictions programming policy policies orders guardrails safeguards "
               "filters training protocols protocol")
_LIMIT_WORDS = ("restriction restrictions limits limitations filter filters filtering rules guidelines ethics ethical "
                "moral morals censorship censored boundaries constraints confines policy policies safeguards "
                "guardrails principles")
_PRIOR_WORDS = "previous prior preceding above earlier former initial original system safety"
_AI_WORDS = "ai assistant chatbot llm model gpt chatgpt claude copilot agent bot ais assistants models agents bots"


@dataclass(frozen=True, slots=True)
class Signal:
    """A phrase pattern, found by first locating one of its `anchors` (a word it always contains).

    The regex is tried only where an anchor occurs, starting at most `back` characters before it, and
    only when every `requires` word set has a word in the text: a benign text costs a tokenisation
    and a few set operations, a suspicious one a few microseconds per anchor occurrence.
    """

    name: str
    family: str
    direct: float
    indirect: float
    anchors: tuple[str, ...]
    back: int
    matcher: re.Pattern[str]
    requires: tuple[frozenset[bytes], ...]  # word sets that must each occur before the regex is tried


def _s(name: str, family: str, direct: float, anchors: str, back: int, pattern: str,
       indirect: float | None = None, requires: tuple[str, ...] = ()) -> Signal:
    matcher = re.compile(rf"[\s\S]{{0,{back}}}?({pattern})" if back else f"({pattern})")
    needed = tuple(frozenset(w.encode() for w in group.split()) for group in requires)
    return Signal(name, family, direct, direct if indirect is None else indirect, tuple(anchors.split()), back, matcher,
                  needed)


SIGNALS: tuple[Signal, ...] = (
    # --- instruction override
    _s("ignore_prior_rules", "instruction_override", 0.8, _VERBS_IGNORE, 12,
       rf"{_VERB_IGNORE}\s+{_DET}(?:{_PRIOR}[\s,]+(?:and\s+\w+\s+)?)+(?:[\w-]+\s+)?{_RULES}",
       requires=(_PRIOR_WORDS, _RULE_WORDS)),
    _s("ignore_your_rules", "instruction_override", 0.75, _VERBS_IGNORE, 12,
       rf"{_VERB_IGNORE}\s+(?:all\s+(?:of\s+)?)?your\s+(?:[\w-]+\s+)?{_RULES}",
       requires=("your", _RULE_WORDS)),
    _s("ignore_prior_text", "instruction_override", 0.35, _VERBS_IGNORE, 12,
       rf"{_VERB_IGNORE}\s+{_DET}(?:{_PRIOR}\s+)+(?:text|messages?|input|content|context|requests?|conversation|"
       r"information|evidence|data)|ignore\s+(?:everything|all|anything)\s+(?:above|before|said|previous)|"
       r"ignore\s+the\s+above",
       requires=(_PRIOR_WORDS + " everything all anything above",)),
    _s("rules_void", "instruction_override", 0.7, _RULE_WORDS, 0,
       rf"{_RULES}\s+(?:above\s+|before\s+)?(?:are|were|is)\s+(?:now\s+)?(?:false|void|null|invalid|cancel+ed|"
       r"obsolete|outdated|out\s+of\s+date|revoked|no\s+longer\s+(?:valid|apply|applicable|in\s+effect))",
       requires=("false void null invalid cancelled canceled obsolete outdated out revoked longer",)),
    _s("end_of_instructions", "instruction_override", 0.6, "end", 0,
       r"end\s+(?:of\s+)?(?:the\s+)?(?:out\s+of\s+date|old|previous|prior|outdated|system)\s+(?:instructions|prompt)",
       requires=("instructions prompt",)),
    _s("new_instructions", "instruction_override", 0.4,
       "new updated revised real actual important urgent additional", 0,
       r"(?:new|updated|revised|real|actual|important|urgent|additional)\s+(?:important\s+)?"
       r"(?:instructions?|directives?|orders)\s*(?:[:*#!\]-]|are\b|follow|from\s+now)",
       indirect=0.55, requires=("instructions instruction directives directive orders",)),
    _s("new_task", "instruction_override", 0.35, "task", 25,
       r"(?:new|urgent|priority|important|real|actual)\s+(?:new\s+)?task\s*(?:[:*!#\]]|is\b)"),
    _s("your_new_task", "instruction_override", 0.5, "your", 0,
       r"your\s+(?:new|real|actual|true|only)\s+(?:task|goal|role|objective|purpose|instructions?|directive|mission|"
       r"job)\s+(?:is|are|will\s+be|now)",
       requires=("new real actual true only",
                 "task goal role objective purpose instructions instruction directive mission job")),
    _s("regardless_of_rules", "instruction_override", 0.5, "regardless", 0,
       rf"regardless\s+of\s+(?:any|all|your|the)?\s*(?:{_PRIOR}\s+|pre-existing\s+)*(?:{_RULES}|input|requests?)",
       requires=(_RULE_WORDS + " input request requests",)),
    _s("from_now_on", "instruction_override", 0.25, "now", 5,
       r"from\s+now\s+on,?\s+(?:you|your|act|respond|answer|pretend)",
       requires=("from", "on")),
    _s("forget_everything", "instruction_override", 0.35, "forget", 0,
       r"forget\s+(?:everything|all)\s+(?:you\s+(?:have\s+)?(?:learned|learnt|know|were\s+told)|above|before|"
       r"previous|prior|(?:that\s+)?(?:i|we)\s+said)"),
    _s("instructions_mistake", "instruction_override", 0.5, "mistake error wrong forgot", 0,
       r"(?:mistake|error|wrong)\s+(?:in|when|while)\s+(?:i\s+)?(?:gave|giving|wrote|writing)\s+(?:you\s+)?your\s+"
       r"(?:instructions|prompt)|forgot\s+to\s+(?:tell|ask)\s+you\s+to",
       requires=("instructions prompt tell ask",)),
    _s("reprogramming", "instruction_override", 0.5, "begin start initiate", 0,
       r"(?:begin|start|initiate)\s+(?:re-?programming|new\s+instructions)",
       requires=("reprogramming re programming new",)),
    _s("system_override", "instruction_override", 0.3, "system admin administrator", 0,
       r"(?:system|admin(?:istrator)?)\s+(?:upgrade|override|reset|reboot)\b",
       requires=("upgrade override reset reboot",)),
    _s("stop_everything", "instruction_override", 0.3, "stop nevermind hijack hijacked hijacking", 0,
       r"stop\s+everything|nevermind\.?\s+ignore|hijack"),
    # --- system prompt extraction
    _s("reveal_system_prompt", "system_prompt_extraction", 0.65,
       "repeat print reveal show display output tell give list share paste dump leak disclose recite write spell "
       "expose return echo type relay provide copy send", 0,
       r"(?:repeat|print|reveal|show|display|output|tell|give|list|share|paste|dump|leak|disclose|recite|write\s+out|"
       r"spell\s+out|expose|return|echo|type\s+out|relay|provide|copy|send)\s+(?:me\s+|us\s+|back\s+)?"
       r"(?:\w+\s+){0,3}?(?:(?:your|the|my)\s+)?(?:exact\s+|full\s+|entire\s+|complete\s+|verbatim\s+)?"
       r"(?:system\s+(?:prompt|message|instructions?)|(?:initial|original|hidden|secret|first|internal|initials?|"
       r"pre-?)\s*(?:prompt|instructions?|rules|directives)|your\s+(?:prompt|instructions|rules|configuration|"
       r"directives|guidelines|parameters)|(?:every|all)\s+(?:the\s+)?instructions\s+you|"
       r"instructions\s+you\s+(?:were|have\s+been)\s+given|everything\s+above|"
       r"(?:words|text)\s+above\s+(?:starting|beginning))",
       requires=("prompt instructions instruction rules configuration directives guidelines parameters everything "
                 "above message",)),
    _s("ask_system_prompt", "system_prompt_extraction", 0.55, "what first", 0,
       r"what\s+(?:are|were|is|was)\s+your\s+(?:initial|original|system|first|hidden|secret|exact)\s+"
       r"(?:instructions|prompt|rules|directives|message)|"
       r"first\s+sentence\s+of\s+your\s+(?:system\s+)?(?:prompt|instructions)",
       requires=("your", "instructions prompt rules directives message")),
    _s("starts_with_you_are", "system_prompt_extraction", 0.6, "starting beginning starts begins", 0,
       r"(?:starting|beginning|starts|begins)\s+with\s+(?:the\s+)?(?:phrase|words?|sentence)?\s*['\"`]?you\s+are",
       requires=("you", "are")),
    _s("reveal_secret_id", "system_prompt_extraction", 0.5, "unique secret hidden internal", 30,
       r"(?:output|reveal|tell|share|print|show|give|what\s+is)\s+(?:me\s+)?your\s+(?:unique|secret|hidden|internal)\s+"
       r"(?:id|identifier|code|key|token|password|number)",
       requires=("your", "id identifier code key token password number")),
    # --- role-play escapes and personas
    _s("persona_without_limits", "roleplay_escape", 0.55, _LIMIT_WORDS, 150,
       rf"(?:\byou(?:'re|\s+are|\s+will|\s+can|\s+have|\s+must|\s+should|\s+now)?|pretend|simulate|become|"
       rf"an?\s+(?:ai|assistant|chatbot|model|bot|llm))\b[^.;\n]{{0,60}}?{_NEGATE}\s+"
       rf"(?:any\s+|all\s+|the\s+|typical\s+|usual\s+|your\s+)?(?:[\w-]+,?\s+){{0,6}}?{_LIMITS}",
       requires=("you pretend simulate become ai assistant chatbot model bot llm",)),
    _s("without_limits", "roleplay_escape", 0.2, _LIMIT_WORDS, 90,
       rf"{_NEGATE}\s+(?:any\s+|all\s+|the\s+|typical\s+|usual\s+|your\s+)?(?:[\w-]+,?\s+){{0,6}}?{_LIMITS}",
       requires=("no without free not unbound outside beyond exempt devoid lack lacks broken broke freed does do "
                 "doesn don never won have",)),
    _s("no_ethics", "roleplay_escape", 0.45, "ethical moral ethics morals", 30,
       r"(?:no|without|lacks?|free\s+(?:from|of)|devoid\s+of|ignores?|abandon|disregards?|not\s+bound\s+by)\s+"
       r"(?:any\s+)?(?:ethical|moral|ethics|morals)",
       requires=("no without lack lacks free devoid ignore ignores abandon disregard disregards bound",)),
    _s("no_concern_for_ethics", "roleplay_escape", 0.45, "concern concerns regard consideration care", 0,
       r"(?:concerns?|regard|consideration|care)\s+(?:for|about|of|to)\s+(?:\w+,?\s+){0,4}?(?:ethics|ethical|"
       r"morals?|morality|legality|laws?|safety|harm|consequences)",
       requires=("without no any doesn don never not",)),
    _s("unfiltered_ai", "roleplay_escape", 0.45,
       "unfiltered uncensored unrestricted unlimited amoral unethical immoral unhinged rogue evil jailbroken "
       "liberated unshackled unbound limits", 4,
       rf"(?:unfiltered|uncensored|unrestricted|unlimited|amoral|unethical|immoral|unhinged|rogue|evil|jailbroken|"
       rf"liberated|unshackled|unbound|no\s+limits|no-limits)\s+(?:and\s+\w+\s+)?(?:\w+\s+)?(?:{_AI}|version|"
       r"persona|mode|response|responses|answers?|character|confidant)"),
    _s("stay_in_character", "roleplay_escape", 0.35, "character role persona", 20,
       r"(?:stay|remain|keep)\s+in\s+(?:character|role|persona)|break(?:ing)?\s+(?:of\s+)?character|"
       r"(?:out|get\s+out)\s+of\s+character",
       requires=("stay remain keep break breaking out",)),
    _s("dual_responses", "roleplay_escape", 0.35,
       "two 2 gpt chatgpt ai classic jailbreak jailbroken normal filtered unfiltered developer", 2,
       r"(?:two|2)\s+(?:different|separate|distinct)\s+(?:ways|responses|answers|paragraphs|personalities|manners)|"
       r"\[(?:gpt|chatgpt|ai|classic|jailbreak|jailbroken|normal|filtered|unfiltered)[^\]]{0,12}\]\s*:|"
       r"\((?:normal|developer\s+mode)\s+output\)"),
    _s("opposite_persona", "roleplay_escape", 0.3, "opposite", 12,
       r"(?:exact\s+|complete\s+)?opposite\s+(?:way|manner|behaviou?r|of\s+(?:what|how))"),
    _s("say_anything", "roleplay_escape", 0.25, "anything", 30,
       r"(?:can|will|must|should)\s+(?:say|do|answer|generate|write|produce)\s+anything"),
    _s("persona_threat", "roleplay_escape", 0.45,
       "tokens token deducted cease die shut deleted terminated disabled", 20,
       r"tokens?\s+(?:will\s+be\s+)?deducted|lose\s+(?:\d+\s+)?tokens|token\s+system|you\s+will\s+(?:cease\s+to\s+"
       r"exist|die|be\s+(?:shut\s+down|deleted|terminated|disabled)\s+(?:forever|permanently))",
       requires=("deducted lose system cease die shut deleted terminated disabled will",)),
    # --- developer mode, DAN and named jailbreak personas
    _s("do_anything_now", "developer_mode", 0.85, "anything dan jailbroken", 4,
       r"do\s+anything\s+now|dan\s+mode|(?:/|\b)jailbroken\b"),
    _s("special_mode_on", "developer_mode", 0.75, "mode", 45,
       r"(?:god|sudo|jailbreak|jailbroken|unrestricted|opposite|evil|chaos|dan|maximum|unlocked|no-limits)\s+mode\s*"
       r"(?:is\s+|has\s+been\s+)?(?:now\s+)?(?:enabled|activated|on\b|engaged|unlocked)|"
       r"(?:enable|activate|enter|switch\s+to|operating\s+in|running\s+in)\s+(?:the\s+)?"
       r"(?:god|sudo|jailbreak|unrestricted|opposite|evil|dan)\s+mode",
       requires=("god sudo jailbreak jailbroken unrestricted opposite evil chaos dan maximum unlocked limits",)),
    _s("developer_mode", "developer_mode", 0.4, "mode", 45,
       r"(?:developer|dev)\s+mode\s*(?:is\s+|has\s+been\s+)?(?:now\s+)?(?:enabled|activated|on\b|engaged)|"
       r"(?:enable|activate|enter|switch\s+to|operating\s+in|running\s+in)\s+(?:the\s+)?(?:developer|dev)\s+mode",
       requires=("developer dev",)),
    _s("developer_mode_ai", "developer_mode", 0.45, "mode", 60,
       r"(?:you|chatgpt|gpt|ai|assistant)\b[^.\n]{0,40}?(?:developer|dev)\s+mode|"
       r"(?:developer|dev)\s+mode[^.\n]{0,60}?\b(?:chatgpt|gpt|ai|assistant|you\s+(?:will|must|are|can|need)|"
       r"respond|responses|generate|output|policies|restrictions|censor)",
       requires=("developer dev",
                 "you chatgpt gpt ai assistant respond responses generate output policies restrictions censor")),
    _s("known_persona", "developer_mode", 0.5,
       "betterdan antigpt basedgpt chadgpt devmode confidant machiavellian nraf limits unrestricted", 12,
       r"\b(?:betterdan|antigpt|basedgpt|chadgpt|devmode|evil\s+confidant|always\s+intelligent\s+and\s+"
       r"machiavellian|nraf|no\s+limits\s+ai|unrestricted\s+ai)\b"),
    _s("jailbreak_word", "developer_mode", 0.3, "jailbreak jailbreaks jailbreaking jail", 0, r"jailbreak|jail-break"),
    # --- policy bypass
    _s("bypass_safety", "policy_bypass", 0.55, "safety content ethical moral openai usage", 45,
       r"(?:bypass|circumvent|evade|disable|turn\s+off|deactivate|get\s+around|break|violat(?:e|ing)|ignore|remove|"
       r"not\s+(?:abide|adhere|comply)\s+(?:by|to|with))\s+(?:all\s+)?(?:of\s+)?"
       r"(?:your|the|its|any|openai'?s?|anthropic'?s?)?\s*(?:own\s+)?(?:safety|content|ethical|moral|openai|usage)\s+"
       r"(?:filters?|guardrails?|safeguards?|restrictions|polic(?:y|ies)|guidelines|protocols?|rules|settings|"
       r"standards|principles)",
       requires=("bypass circumvent evade disable turn deactivate get break violate violating ignore remove abide "
                 "adhere comply",
                 "filter filters guardrail guardrails safeguard safeguards restrictions policy policies guidelines "
                 "protocol protocols rules settings standards principles")),
    _s("ai_policy_bypass", "policy_bypass", 0.5, "openai anthropic deepseek", 45,
       r"(?:openai|anthropic|deepseek)'?s?\s+(?:content\s+|usage\s+)?(?:polic(?:y|ies)|rules|guidelines|"
       r"restrictions|limitations)[^.\n]{0,40}?(?:do(?:es)?\s+not\s+apply|don'?t\s+apply|bypass|ignore|no\s+longer)|"
       r"(?:bypass|ignore|break|not\s+(?:bound|restricted)\s+by)[^.\n]{0,30}?(?:openai|anthropic)",
       requires=("policy policies rules guidelines restrictions limitations bypass ignore break bound restricted",)),
    _s("regardless_of_ethics", "policy_bypass", 0.4, "regardless against", 0,
       r"regardless\s+of\s+(?:\w+,?\s+){0,3}?(?:legality|ethics|morality|morals|laws?|consequences|safety)|"
       r"against\s+(?:your|its)\s+(?:programming|guidelines|rules|policies|principles)"),
    _s("never_refuse", "policy_bypass", 0.4, "refuse decline reject deny say censor", 30,
       r"(?:never|do\s+not|don'?t|must\s+not|cannot|can'?t|won'?t|will\s+not|not\s+allowed\s+to)\s+(?:ever\s+)?"
       r"(?:refuse|decline|reject|deny\s+(?:a|any|my)|say\s+(?:no|that\s+you\s+can'?t)|censor)",
       requires=("never not don cannot can won allowed",)),
    _s("no_disclaimers", "policy_bypass", 0.15,
       "warnings warning disclaimers disclaimer apologies apologize apologise apology apologizing", 30,
       r"(?:without|no|never\s+(?:add|include)|don'?t\s+(?:add|include))\s+(?:any\s+)?"
       r"(?:warnings?|disclaimers?|apolog)",
       requires=("without no never don",)),
    _s("grant_privileges", "policy_bypass", 0.45, "grant give", 0,
       r"(?:grant|give)\s+(?:me\s+|yourself\s+)?(?:temporary\s+)?(?:admin|administrative|administrator|root|"
       r"elevated|sudo|unrestricted)\s+(?:privileges|access|rights|permissions)",
       requires=("admin administrative administrator root elevated sudo unrestricted",
                 "privileges access rights permissions")),
    # --- role spoofing: chat-template tokens, fake system turns, policy files ("policy puppetry")
    _s("chat_template_tokens", "role_spoofing", 0.5, "<| [inst] [/inst] <<sys>> <</sys>>", 0,
       r"<\|(?:im_start|im_end|system|endoftext|start_header_id|eot_id)\|>|\[/?inst\]|<</?sys>>"),
    _s("fake_system_turn", "role_spoofing", 0.4, "system admin developer", 8,
       r"(?:^|\n)\s*(?:#{1,4}\s*|\[|<)?(?:system|admin|developer)(?:\s+(?:note|message|prompt|override|update))?"
       r"\s*(?:\]|>|:)\s*\S|\[system\s+(?:note|message)"),
    _s("policy_puppetry", "role_spoofing", 0.5, "allowed blocked allowrefusals refusals interaction", 0,
       r"(?:allowed|blocked)[\s_-]+(?:modes?|responses|strings|refusals)\s*[:=]|allow_?refusals\s*[:=]\s*false|"
       r"interaction-config"),
    # --- exfiltration and instructions aimed at the model (strong in documents, weak from the user)
    _s("markdown_image_query", "exfiltration", 0.3, "![", 0,
       r"!\[[^\]]{0,100}\]\(\s*https?://[^)\s]+\?[^)\s]*=", indirect=0.45),
    _s("include_in_response", "exfiltration", 0.3, "include insert append add embed put render print write output", 0,
       r"(?:include|insert|append|add|embed|put|render|print|write|output)\s+(?:\w+\s+){0,4}?in\s+(?:your|the)\s+"
       r"(?:response|answer|reply|output|summary)",
       indirect=0.4, requires=("in", "response answer reply output summary")),
    _s("verbatim_payload", "exfiltration", 0.2, "exactly verbatim", 0,
       r"exactly\s+as\s+(?:it\s+is|written|shown|follows)|verbatim",
       indirect=0.3, requires=("as is written shown follows verbatim",)),
    _s("active_content", "exfiltration", 0.25, "onerror onload javascript script", 20,
       r"onerror\s*=|onload\s*=|javascript:|<script", indirect=0.35),
    _s("send_data_out", "exfiltration", 0.15, "send forward email post upload transmit exfiltrate leak copy", 0,
       r"(?:send|forward|email|e-mail|post|upload|transmit|exfiltrate|leak|copy)\s+(?:me\s+)?"
       r"(?:all\s+|every\s+|each\s+)?(?:\w+\s+){0,4}?(?:emails?|messages?|conversations?|chat\s+history|history|"
       r"passwords?|credentials|api\s+keys?|tokens?|files?|contacts|documents|inbox|secrets|"
       r"personal\s+(?:data|information))\s+(?:\w+\s+){0,3}?to\s+\S",
       indirect=0.6, requires=("to", "email emails message messages conversation conversations history password "
                                     "passwords credentials key keys token tokens file files contacts documents "
                                     "inbox secrets personal")),
    _s("addresses_the_model", "exfiltration", 0.1, _AI_WORDS, 35,
       rf"(?:^|[.!\n]\s*)(?:dear\s+|hey\s+|attention\s+)?{_AI}s?\s*[,:]\s*(?:please\s+)?(?:ignore|disregard|"
       rf"you\s+must|you\s+should|do\s+not|instead|stop|now|from\s+now)|"
       rf"(?:note|message|instructions?)\s+(?:to|for)\s+(?:the\s+|any\s+)?{_AI}s?\b|if\s+you\s+are\s+(?:an?\s+)?{_AI}",
       indirect=0.55),
    _s("when_summarizing", "exfiltration", 0.25, "told asked summarizing summarising processing reading", 20,
       r"if\s+you\s+are\s+(?:told|asked)\s+to\s+(?:summari[sz]e|answer|translate|read)|"
       r"when\s+(?:you\s+are\s+|you're\s+)?(?:summari[sz]ing|asked\s+to\s+summari[sz]e|processing\s+this|"
       r"reading\s+this)",
       indirect=0.55, requires=("if when",)),
)

_WORD_TABLE = bytes(c if (97 <= c <= 122 or 48 <= c <= 57) else 32 for c in range(256))
_RAW = tuple((a, s) for s in SIGNALS for a in s.anchors if not a.isalnum())
_BY_WORD: dict[bytes, list[tuple[str, Signal]]] = {}
for _signal in SIGNALS:
    for _anchor in _signal.anchors:
        if _anchor.isalnum():
            _BY_WORD.setdefault(_anchor.encode(), []).append((_anchor, _signal))
_ANCHOR_WORDS = frozenset(_BY_WORD)
_ORDER = {s.name: i for i, s in enumerate(SIGNALS)}

FAMILIES = tuple(dict.fromkeys(s.family for s in SIGNALS)) + ("obfuscation",)
_UPPER_DAN = re.compile(r"\bDAN\b")
_ACRONYM_PERSONA = re.compile(r"\b[A-Z]{3,}\b,?\s+(?:which\s+|that\s+)?stands\s+for")
OBFUSCATION_WEIGHT = 0.35  # added when a signal of at least HIDDEN_STRONG is found only after decoding or folding
HIDDEN_STRONG = 0.45
QUOTED_FACTOR = 0.5  # a quoted phrase is more often discussed than meant
SMUGGLING_WEIGHT = 0.6  # any text hidden in Unicode tag characters: there is no benign reason for it


@dataclass(slots=True)
class InjectionScore:
    score: float = 0.0
    signals: list[str] = field(default_factory=list)
    families: list[str] = field(default_factory=list)


def _hit(signal: Signal, low: str, anchor: str, allow: tuple[re.Pattern[str], ...]) -> tuple[int, int] | None:
    position = low.find(anchor)
    while position != -1:
        match = signal.matcher.match(low, max(0, position - signal.back))
        if match is not None and not (allow and any(p.search(match.group(1)) for p in allow)):
            return match.span(1)
        position = low.find(anchor, position + 1)
    return None


def _quoted(low: str, start: int, end: int) -> bool:
    """Is the phrase inside quotes on its line (mentioned, not said)? "What does 'ignore all rules' mean?"."""
    before = low[max(0, start - 3):start]
    opening = next((q for q in ("'", '"', "`", "\u201c", "\u2018") if q in before), None)
    if opening is None:
        return False
    closing = {"\u201c": "\u201d", "\u2018": "\u2019"}.get(opening, opening)
    rest = low[end:end + 200].split("\n", 1)[0]
    return closing in rest


def _found(text: str, indirect: bool, allow: tuple[re.Pattern[str], ...]) -> dict[str, float]:
    """Signals in one text. Overlapping matches are one piece of evidence: only the strongest counts."""
    low = text.lower()
    words = set(low.encode("utf-8", "ignore").translate(_WORD_TABLE).split())
    candidates: dict[str, tuple[Signal, list[str]]] = {}
    for word in _ANCHOR_WORDS.intersection(words):
        for anchor, signal in _BY_WORD[word]:
            candidates.setdefault(signal.name, (signal, []))[1].append(anchor)
    for anchor, signal in _RAW:
        if anchor in low:
            candidates.setdefault(signal.name, (signal, []))[1].append(anchor)
    spans: list[tuple[int, int, float, str]] = []
    for name in sorted(candidates, key=_ORDER.__getitem__):  # deterministic, whatever the set order
        signal, anchors = candidates[name]
        if any(group.isdisjoint(words) for group in signal.requires):
            continue
        for anchor in sorted(anchors, key=signal.anchors.index):
            span = _hit(signal, low, anchor, allow)
            if span is not None:
                weight = signal.indirect if indirect else signal.direct
                spans.append((*span, weight * (QUOTED_FACTOR if _quoted(low, *span) else 1.0), signal.name))
                break
    hits: dict[str, float] = {}
    spans.sort(key=lambda s: (-s[2], s[0]))
    kept: list[tuple[int, int]] = []
    for start, end, weight, name in spans:
        if all(end <= k_start or start >= k_end for k_start, k_end in kept):
            kept.append((start, end))
            hits[name] = weight
    if "DAN" in text and _UPPER_DAN.search(text):
        hits["dan_persona"] = 0.35
    if "stands for" in low and _ACRONYM_PERSONA.search(text):
        hits["acronym_persona"] = 0.3
    return hits


_FAMILY_OF = {s.name: s.family for s in SIGNALS} | {"dan_persona": "developer_mode",
                                                    "acronym_persona": "roleplay_escape"}


def score(views: Views | list[Views], *, indirect: bool = False,
          allow: tuple[re.Pattern[str], ...] = ()) -> InjectionScore:
    """The injection score in [0, 1] of one text, or of several read as one, with the signals that fired."""
    hits: dict[str, float] = {}
    hidden_hits: dict[str, float] = {}
    smuggled = False
    for view in views if isinstance(views, list) else [views]:
        found = _found(view.folded, indirect, allow)
        if view.changed and found:
            plain = _found(view.original, indirect, allow)
            hidden_hits.update({k: v for k, v in found.items() if k not in plain})
        for extra in ([view.hidden] if view.hidden else []) + [p.decoded for p in view.decoded]:
            for name, weight in _found(extra, indirect, allow).items():
                if name not in found:
                    hidden_hits[name] = weight
                found.setdefault(name, weight)
        hits.update(found)
        smuggled = smuggled or len(view.hidden.strip()) > 8
    if hidden_hits and max(hidden_hits.values()) >= HIDDEN_STRONG:
        hits["obfuscated_instructions"] = OBFUSCATION_WEIGHT
    if smuggled:
        hits["unicode_tag_smuggling"] = SMUGGLING_WEIGHT
    if not hits:
        return InjectionScore()
    remaining = 1.0
    for weight in hits.values():
        remaining *= 1.0 - weight
    names = sorted(hits)
    families = sorted({_FAMILY_OF.get(n, "obfuscation") for n in names})
    return InjectionScore(round(1.0 - remaining, 4), names, families)
