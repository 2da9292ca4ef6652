"""The upstream proxy: projects this index does not have, served from upstream indexes, with
dependency confusion blocked by routing on the name before any upstream is asked
(``pallet.core.routing``). See docs/proxy.md."""
