"""MkDocs hook: the language switch of every page links to the same page in the other language
by a relative link, the home pages included; the 404 page's leads to each language's home.

mkdocs-static-i18n points each page's switch at its translation, but leaves the home pages'
at the absolute `/` and `/en/`, which lead nowhere when the site is opened from its files or
served under a sub-path, and 404.html keeps whichever page was built last. This hook runs after
the plugin (priority 50); Material then makes every link relative to its page.
"""

from __future__ import annotations

from mkdocs.plugins import event_priority


def language_switch(config) -> list[dict]:
    """The switch's entries. The plugin sets them per page as an attribute of `extra` (what the
    theme reads), not as its key."""
    return getattr(config.extra, "alternate", None) or config.extra.get("alternate", [])


@event_priority(0)
def on_page_context(context, page, config, nav):
    translations = getattr(page.file, "alternates", {})
    for entry in language_switch(config):
        translation = translations.get(entry["lang"])
        if translation is not None:
            entry["link"] = translation.url or "./"
    return context


@event_priority(0)
def on_template_context(context, template_name, config):
    if template_name == "404.html":  # served at any depth: absolute links to the homes
        homes = {
            language.locale: language.link for language in config.plugins["i18n"].config.languages
        }
        for entry in language_switch(config):
            entry["link"] = homes.get(entry["lang"], entry["link"])
    return context
