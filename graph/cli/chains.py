"""`mirador chains`: every chain with its stages, models, thresholds, routing and gating."""

from __future__ import annotations

from graph.chains import configured_chains


def show() -> int:
    configured = configured_chains()
    for chain in configured.chains.values():
        routed = sorted(t for t, c in configured.router.items() if c == chain.name)
        exit_at = f" · early exit at {chain.early_exit:.2f}" if chain.early_exit is not None else ""
        print(f"{chain.name}: {chain.description}")
        print(f"  for query types: {', '.join(routed) or '(only when named)'}{exit_at}")
        for n, st in enumerate(chain.stages, start=1):
            extra = [f"repeats ≤{st.max_repeats}", f"min confidence {st.min_confidence:.2f}",
                     f"{st.max_tokens} tokens", f"timeout {st.timeout_s:g} s"]  # fmt: skip
            if st.optional:
                extra.append("optional")
            if st.applies_to:
                extra.append(f"only for {', '.join(st.applies_to)}")
            if st.base_url:
                extra.append(f"at {st.base_url}")
            print(f"  {n}. {st.name:<20} {st.model:<18} {' · '.join(extra)}")
    print(
        "retrieval gating: "
        + "; ".join(f"{t} → {', '.join(k) or 'none'}" for t, k in configured.gating.items())
    )
    return 0
