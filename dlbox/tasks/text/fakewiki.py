"""Small synthetic MediaWiki dumps: valid export XML (bz2), for tests, the benchmark and offline demos.

``zh_pages`` writes Chinese articles in traditional characters with the markup real articles have (nested
templates, links, files, categories, tables, refs, comments, bold, headings, HTML entities) and English words
and digits mixed in, plus a redirect and a page outside the article namespace. Words inside markup that must
vanish are listed in ``MUST_VANISH`` (simplified, as they would appear after conversion).

A planted structure: the pair ``麒麟`` / ``鳳凰`` occurs only in sentences built from a small set of context
words, interchangeably, so the two share their contexts exactly: word2vec must make them each other's
nearest neighbour.
"""

from __future__ import annotations

import bz2
import random
from collections.abc import Iterable
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from dlbox.base.fileio import atomic_write

PAIR = ("麒麟", "鳳凰")
PAIR_SIMPLIFIED = ("麒麟", "凤凰")
CONTEXT = ["傳說", "神獸", "吉祥", "古代", "圖騰", "祥瑞", "宮殿", "皇帝"]
FILLER = (
    "經濟 歷史 政治 文化 學校 電腦 網絡 語言 國家 城市 音樂 電影 體育 醫院 銀行 鐵路 機場 圖書館 大學 學生 "
    "老師 醫生 科學 數學 物理 化學 生物 地理 藝術 文學 詩歌 小說 報紙 雜誌 電視 廣播 新聞 記者 軍隊 戰爭 "
    "和平 條約 議會 選舉 總統 政府 法律 法院 警察 農業 工業 商業 貿易 市場 價格 貨幣 稅收 財政 鋼鐵 煤炭 "
    "石油 電力 汽車 飛機 輪船 橋樑 道路 港口 河流 湖泊 山脈 森林 草原 沙漠 海洋 島嶼 氣候 天氣 溫度 動物 "
    "植物 鳥類 魚類 昆蟲 宗教 寺廟 教堂 節日 傳統 歌曲 舞蹈 繪畫 雕塑 建築 博物館 公園 廣場 街道 房屋 家庭 "
    "兒童 婦女 青年 工人 農民 商人 作家 畫家 歌手 演員 導演 足球 籃球 網球 游泳 比賽 冠軍"
).split()
# Words that sit only inside markup (template arguments, refs, comments, link targets, categories, other
# namespaces, redirects): none may reach the corpus. Simplified spelling.
MUST_VANISH = ["模版", "参考文献", "注释", "目标页面", "分类标签", "转址目标", "模板页面"]
# Words that sit in link labels, file captions, table cells and external-link labels: they must be kept.
MUST_KEEP = ["显示", "文字", "图片说明", "表格", "外部"]

SITEINFO = """  <siteinfo>
    <sitename>維基百科</sitename>
    <dbname>{dbname}</dbname>
    <base>https://{lang}.wikipedia.org/wiki/Wikipedia:首页</base>
    <generator>MediaWiki 1.42.0-wmf.1</generator>
    <case>first-letter</case>
    <namespaces>
      <namespace key="-1" case="first-letter">Special</namespace>
      <namespace key="0" case="first-letter" />
      <namespace key="1" case="first-letter">Talk</namespace>
      <namespace key="4" case="first-letter">Wikipedia</namespace>
      <namespace key="6" case="first-letter">File</namespace>
      <namespace key="10" case="first-letter">Template</namespace>
      <namespace key="14" case="first-letter">Category</namespace>
    </namespaces>
  </siteinfo>
"""


def dump_xml(pages: Iterable[dict], lang: str = "zh", dbname: str | None = None) -> str:
    """A MediaWiki export-0.11 document; each page: ``title``, ``text``, optional ``ns`` and ``redirect``."""
    out = [
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://www.mediawiki.org/xml/export-0.11/ '
        f'http://www.mediawiki.org/xml/export-0.11.xsd" version="0.11" xml:lang="{lang}">\n',
        SITEINFO.format(dbname=dbname or f"{lang}wiki", lang=lang),
    ]
    for i, page in enumerate(pages, 1):
        text = page["text"]
        redirect = f"    <redirect title={quoteattr(page['redirect'])} />\n" if page.get("redirect") else ""
        out.append(
            f"  <page>\n    <title>{escape(page['title'])}</title>\n    <ns>{page.get('ns', 0)}</ns>\n"
            f"    <id>{i}</id>\n{redirect}    <revision>\n      <id>{1000 + i}</id>\n"
            f"      <timestamp>2024-01-01T00:00:00Z</timestamp>\n"
            f"      <contributor>\n        <username>Example</username>\n        <id>1</id>\n      </contributor>\n"
            f"      <model>wikitext</model>\n      <format>text/x-wiki</format>\n"
            f'      <text bytes="{len(text.encode())}" xml:space="preserve">{escape(text)}</text>\n'
            f"      <sha1>0</sha1>\n    </revision>\n  </page>\n"
        )
    out.append("</mediawiki>\n")
    return "".join(out)


def write_dump(path: str | Path, pages: Iterable[dict], lang: str = "zh", dbname: str | None = None) -> Path:
    """Write the dump, bz2-compressed when the name ends in .bz2 (atomically)."""
    path = Path(path)
    data = dump_xml(pages, lang, dbname).encode("utf-8")
    if path.suffix == ".bz2":
        data = bz2.compress(data, 9)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return path


def _sentence(rng: random.Random, planted: bool) -> str:
    if planted:
        # The pair shares its contexts exactly: the same context words, either member in the slot.
        left = rng.sample(CONTEXT, 2)
        right = rng.sample(CONTEXT, 2)
        return "".join(left) + rng.choice(PAIR) + "".join(right)
    words = [rng.choice(FILLER) for _ in range(rng.randint(5, 9))]
    if rng.random() < 0.2:  # context words occur outside the planted sentences too
        words.insert(rng.randrange(len(words)), rng.choice(CONTEXT))
    return "".join(words)


def _paragraph(rng: random.Random, n: int, planted_share: float) -> str:
    return "".join(_sentence(rng, rng.random() < planted_share) + rng.choice("。。。！？；") for _ in range(n))


def zh_article(rng: random.Random, i: int, planted_share: float = 0.3) -> str:
    """One article's wikitext: every kind of markup, English and digits, in traditional characters."""
    p = lambda n: _paragraph(rng, n, planted_share)  # noqa: E731
    return (
        f"{{{{Infobox 城市|名稱=模版內容{i}|人口={{{{formatnum:{1000 + i}}}}}|備註={{{{lang|en|模版內容}}}}}}}}\n"
        f"'''條目{i}'''是{p(2)}<ref>參考文獻來源第{i}頁</ref>"
        f"<!-- 註釋隱藏內容 -->\n\n"
        f"== 歷史 ==\n"
        f"[[目標頁面|顯示文字]]，{p(2)} iPhone 5在2012年發布，Python 3.12版本&nbsp;。\n"
        f"* {p(1)}\n"
        f"=== 地理 ===\n"
        f"[[File:Example{i}.jpg|thumb|200px|圖片說明]]\n"
        f'{{| class="wikitable" style="width:100%"\n|-\n! 表頭 !! 數值\n|-\n| 表格內容 || {i * 7}\n|}}\n'
        f"[http://example.org/{i} 外部連結]，''{p(2)}''\n"
        f"[[Category:分類標籤]]\n"
    )


def zh_pages(n_articles: int, seed: int = 0, planted_share: float = 0.3) -> list[dict]:
    """``n_articles`` articles plus a redirect and a template page (which must not reach the corpus)."""
    rng = random.Random(seed)
    pages = [{"title": f"條目{i}", "text": zh_article(rng, i, planted_share)} for i in range(n_articles)]
    pages.insert(1, {"title": "轉址", "text": "#重定向 [[轉址目標]]", "redirect": "轉址目標"})
    pages.insert(2, {"title": "Template:測試", "ns": 10, "text": "模板頁面專有內容"})
    return pages
