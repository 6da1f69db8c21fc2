"""A synthetic campus with known truth: the exports of four campus systems and who is who.

`generate_campus(people, seed, out_dir)` writes `student.csv`, `hr.csv`, `cas.csv` and `billing.csv` in the
default column layouts, and `truth.csv` (source, record, person, national_id_valid): the generator's own
person index, against which a linker's output is scored (`bench/score.py`).

Everything is generated; no real person's data. What makes it hard, as on a real campus:

* several numbers per person over the years: undergraduate (学号 ``1…``), master (``2…``), PhD (``3…``),
  then teacher or staff (工号 ``6…``); the number is level digit, campus digit, 4-digit year, 4-digit
  sequence, e.g. 1120101234. Every number has its CAS account and most have a billing account.
* phones change over the years, so old records hold old phones; written as ``+86 138 1234 5678``,
  ``138-1234-5678``, ``8613812345678``…; a few numbers are later reassigned to someone else.
* names in pinyin in HR (``Zhang Shuai``, ``SHUAI ZHANG``, ``Zhang, Shuai``), same-pinyin typos (张帅 → 张率),
  traditional characters (張帥), stray spaces; dates in the usual formats of Chinese exports.
* national IDs missing in some rows and mistyped in others (one digit changed: invalid check digit); a few
  older staff with the 15-digit legacy form.
* homonyms: common names (张伟, 王伟, 李娜…) held by many people born the same year.
* siblings and twins: same surname, same region, the parent's phone on their student records; twins share
  the birth date but have different given names and different valid IDs.

The demo loads `generate_campus(200, …)`, which always holds the university's own example person (张帅:
1120101234, 2120143257, 3120190289, 6120170032, one national ID) and another 张帅 born the same year.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import opencc
from pypinyin import lazy_pinyin

from idbroker.normalize.national_ids import make_national_id


def _words(text: str) -> list[str]:
    return text.split()


STUDENT_HEADER = (
    "学号",
    "姓名",
    "性别",
    "出生日期",
    "身份证号",
    "培养层次",
    "入学年份",
    "学院",
    "手机号",
    "电子邮箱",
    "学籍状态",
)
HR_HEADER = (
    "工号",
    "姓名",
    "性别",
    "出生日期",
    "身份证号",
    "人员类别",
    "部门",
    "手机号",
    "电子邮箱",
    "在职状态",
)
CAS_HEADER = ("uid", "cn", "mail", "mobile", "eduPersonAffiliation")
BILLING_HEADER = ("account", "name", "mobile")
TRUTH_HEADER = ("source", "record", "person", "national_id_valid")

SOURCES = ("student", "hr", "cas", "billing")
THIS_YEAR = 2024  # the campus as it stands at the end of this year
FIRST_YEAR = 2004  # the oldest undergraduate intake in the exports

EXAMPLE_NUMBERS = ("1120101234", "2120143257", "3120190289", "6120170032")
EXAMPLE_PERSON = "P0000000"
EXAMPLE_HOMONYM = "P0000001"

# Top surnames with their relative frequency (per cent, rounded) and their reading as a surname.
_SURNAMES = (
    "王wang7.1 李li7.0 张zhang6.7 刘liu5.4 陈chen4.5 杨yang3.1 黄huang2.2 赵zhao2.0 吴wu1.8 周zhou1.7 "
    "徐xu1.3 孙sun1.2 马ma1.2 朱zhu1.1 胡hu1.0 郭guo.97 何he.93 高gao.91 林lin.87 罗luo.86 郑zheng.79 "
    "梁liang.74 谢xie.62 宋song.61 唐tang.59 许xu.55 韩han.55 冯feng.53 邓deng.53 曹cao.51 彭peng.49 "
    "曾zeng.47 肖xiao.46 田tian.44 董dong.43 袁yuan.42 潘pan.41 于yu.40 蒋jiang.40 蔡cai.38 余yu.38 "
    "杜du.37 叶ye.36 程cheng.35 苏su.34 魏wei.33 吕lv.33 丁ding.32 任ren.32 沈shen.31 姚yao.30 卢lu.30 "
    "姜jiang.29 崔cui.28 钟zhong.27 谭tan.27 陆lu.26 汪wang.25 范fan.25 金jin.24 石shi.24 廖liao.23 "
    "贾jia.23 夏xia.22 韦wei.22 付fu.21 方fang.21 白bai.20 邹zou.20 孟meng.19 熊xiong.19 秦qin.18 "
    "邱qiu.18 江jiang.18 尹yin.17 薛xue.17 闫yan.16 段duan.16 雷lei.16 侯hou.15 龙long.15 史shi.15 "
    "陶tao.14 黎li.14 贺he.14 顾gu.13 毛mao.13 郝hao.13 龚gong.12 邵shao.12 万wan.12 钱qian.11 严yan.11 "
    "覃qin.11 武wu.11 戴dai.11 莫mo.10 孔kong.10 向xiang.10 汤tang.10 章zhang.10 单shan.05 解xie.05 "
    "翟zhai.05 仇qiu.04 查zha.04 朴piao.03 区ou.02"
)
_MALE_CHARS = "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙阳东峰建博志晨轩然睿泽航宏亮成毅坤彬昊天翔豪振"
_FEMALE_CHARS = "芳娜敏静丽艳娟霞秀英玲婷雪慧莹倩琳颖欣佳怡涵梦晶薇璐露蕾琪瑶月萍红燕洁悦雯婧菲妍思雨彤诗蓉"
_SHARED_CHARS = "子一晓小文嘉家海春秋金玉新永国立德林洋"
_COMMON_NAMES_M = _words("张伟 王伟 李伟 刘伟 李强 王磊 张勇 李军 王强 张磊 王勇 李杰 刘洋 张涛 王鹏 李明 张杰 王超")
_COMMON_NAMES_F = _words("王芳 李娜 张敏 李静 王静 张丽 刘芳 王丽 李敏 张静 王敏 李丽 刘娜 张燕 王艳 李婷 张婷 陈静")
# Characters that read the same (tones aside): the typos a clerk makes typing pinyin into an IME.
_HOMOPHONES = (
    "伟玮炜维薇巍 强墙蔷 磊蕾雷 军君钧 勇永咏 杰洁捷 涛韬滔 斌彬滨 超潮 明鸣铭 刚钢纲 平萍苹 "
    "辉晖徽 鹏朋 华桦 飞菲非 鑫欣新心馨 波博柏 宇雨语羽玉 浩昊皓豪 凯楷恺 健建剑 俊骏峻 帆凡 "
    "帅率 旭序 宁凝 龙隆 阳洋扬 东冬 峰锋丰枫 文雯闻 晨辰臣 轩萱宣 然冉 睿瑞锐 泽则 航杭 "
    "宏鸿弘红 亮靓 成诚承程 毅艺怡亦奕逸 坤昆 天添田 翔祥 振震镇 芳方 娜纳 敏闽 静晶婧靖菁敬 "
    "丽莉立力俐利黎 艳燕雁彦妍 娟鹃涓 霞侠 秀绣 英颖莹盈瑛 玲铃灵琳凌 婷庭亭霆 雪学 倩茜 佳嘉家 "
    "涵晗寒含 梦孟 璐露路鹭 琪琦棋淇 瑶遥尧 月悦越岳 思丝斯 彤桐童 诗施师 蓉荣容融 子紫梓 "
    "一依伊 晓小筱 春纯 新欣 国果 德得 "
    "张章 王汪 李黎 吴武 徐许 于余 江姜蒋 陆卢 石史 韦魏 秦覃 何贺 严闫 唐汤 邱仇"
)
_PINYIN_OVERRIDES = {"率": "shuai", "单": "shan", "曾": "zeng", "仇": "qiu", "解": "xie", "朴": "piao"}
_REGIONS = _words(
    "110101 110105 110108 120101 130102 140105 150102 210102 220102 230102 310104 310115 320102 320506 "
    "330106 340102 350102 360102 370102 410105 420102 430102 440106 440305 450102 460105 500103 510104 "
    "520102 530102 610113 620102 630102 640104 650102"
)
_COLLEGES = _words(
    "计算机学院 数学学院 物理学院 化学学院 生命科学学院 经济学院 管理学院 法学院 外国语学院 文学院 "
    "机械工程学院 电子信息学院 土木工程学院 医学院 环境学院 材料学院 艺术学院 马克思主义学院"
)
_DEPARTMENTS = _words("教务处 人事处 财务处 学生处 图书馆 信息中心 后勤处 科研处 研究生院 国际处 保卫处")
_PHONE_PREFIXES = _words(
    "130 131 132 133 134 135 136 137 138 139 150 151 152 153 155 156 157 158 159 166 173 176 177 178 "
    "180 181 182 183 184 185 186 187 188 189 198 199"
)
_MAIL_DOMAINS = ("163.com", "126.com", "qq.com", "sina.com", "foxmail.com", "gmail.com")
_LEVELS = {1: "本科", 2: "硕士", 3: "博士"}
_YEARS_OF_STUDY = {1: 4, 2: 3, 3: 4}
_DATE_FORMATS: tuple[Callable[[date], str], ...] = (
    lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}",
    lambda d: f"{d.year}/{d.month}/{d.day}",
    lambda d: f"{d.year:04d}{d.month:02d}{d.day:02d}",
    lambda d: f"{d.year}年{d.month}月{d.day}日",
    lambda d: f"{d.year}.{d.month:02d}.{d.day:02d}",
    lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}",
)
_PHONE_FORMATS: tuple[Callable[[str], str], ...] = (
    lambda p: p,
    lambda p: f"+86 {p[:3]} {p[3:7]} {p[7:]}",
    lambda p: f"{p[:3]}-{p[3:7]}-{p[7:]}",
    lambda p: f"86{p}",
    lambda p: f"{p[:3]} {p[3:7]} {p[7:]}",
    lambda p: f"+86{p}",
)
# Each export writes dates and phones mostly its own way: (main date format, main phone format).
_SOURCE_STYLE = {"student": (0, 0), "hr": (3, 2), "cas": (0, 1), "billing": (0, 3)}


def _parse_surnames() -> tuple[list[str], list[float], dict[str, str]]:
    chars, weights, readings = [], [], {}
    for item in _SURNAMES.split():
        char, rest = item[0], item[1:]
        reading = rest.rstrip("0123456789.")
        chars.append(char)
        weights.append(float(rest[len(reading) :]))
        readings[char] = reading
    return chars, weights, readings


_SURNAME_CHARS, _SURNAME_WEIGHTS, _SURNAME_READINGS = _parse_surnames()
_HOMOPHONE_OF: dict[str, str] = {char: group for group in _HOMOPHONES.split() for char in group if len(group) > 1}
_S2T = opencc.OpenCC("s2t")


def _reading(char: str) -> str:
    return _PINYIN_OVERRIDES.get(char) or _SURNAME_READINGS.get(char) or lazy_pinyin(char)[0]


def _char_tables() -> tuple[dict[str, str], dict[str, str]]:
    pool = set(_MALE_CHARS + _FEMALE_CHARS + _SHARED_CHARS + "".join(_SURNAME_CHARS) + _HOMOPHONES.replace(" ", ""))
    pool.update("".join(_COMMON_NAMES_M + _COMMON_NAMES_F))
    given = {char: lazy_pinyin(char)[0] for char in sorted(pool)}
    given.update(_PINYIN_OVERRIDES)
    traditional = {char: _S2T.convert(char) for char in sorted(pool)}
    return given, {k: v for k, v in traditional.items() if v != k}


_GIVEN_READINGS, _TRADITIONAL = _char_tables()


@dataclass(frozen=True)
class CampusFiles:
    """Where a generated campus was written, and how many records each file holds."""

    directory: Path
    people: int
    counts: dict[str, int]

    def path(self, source: str) -> Path:
        return self.directory / f"{source}.csv"

    @property
    def truth(self) -> Path:
        return self.directory / "truth.csv"

    @property
    def records(self) -> int:
        return sum(self.counts.values())


@dataclass
class _Person:
    pid: str
    surname: str
    given: str
    male: bool
    birth: date
    national_id: str
    phones: list[tuple[int, str]]  # (from year, number), oldest first
    email: str | None
    parent_phone: str | None = None
    legacy_id: bool = False  # also written in its 15-digit form in some HR rows
    roles: list[tuple[str, str, int, str]] = field(default_factory=list)  # (number, kind, year, status)

    @property
    def name(self) -> str:
        return self.surname + self.given

    def phone_at(self, year: int) -> str:
        current = self.phones[0][1]
        for since, number in self.phones:
            if since <= year:
                current = number
        return current


class _Campus:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.counters: dict[tuple[int, int], int] = {}
        self.numbers: set[str] = set(EXAMPLE_NUMBERS)
        self.phones: set[str] = set()
        self.ids: set[str] = set()
        self.released: list[tuple[int, str]] = []  # phones given up, (year, number): may be reassigned
        self.mails: set[str] = set()  # work addresses are unique on a campus, whatever the names
        self.rows: dict[str, list[tuple[str, ...]]] = {source: [] for source in SOURCES}
        self.truth: list[tuple[str, str, str, str]] = []

    # ---- identifiers ---------------------------------------------------------------------------
    def number(self, level: int, year: int) -> str:
        while True:
            count = self.counters.get((level, year), 0) + 1
            self.counters[(level, year)] = count
            number = f"{level}{1 + count // 10000}{year:04d}{count % 10000:04d}"
            if number not in self.numbers:
                self.numbers.add(number)
                return number

    def new_phone(self, year: int) -> str:
        rng = self.rng
        if self.released and rng.random() < 0.04 and self.released[0][0] < year - 1:
            return self.released.pop(0)[1]  # a number given up years ago, now someone else's
        while True:
            phone = rng.choice(_PHONE_PREFIXES) + f"{rng.randrange(100_000_000):08d}"
            if phone not in self.phones:
                self.phones.add(phone)
                return phone

    def work_mail(self, handle: str, number: str) -> str:
        mail = f"{handle}{number[-4:]}@example.edu.cn"
        while mail in self.mails:
            mail = f"{handle}{number[-4:]}{self.rng.randrange(10)}@example.edu.cn"
        self.mails.add(mail)
        return mail

    def national_id(self, region: str, birth: date, male: bool, near: int | None = None) -> str:
        rng = self.rng
        sequence = near if near is not None else rng.randrange(500) * 2 + (1 if male else 0)
        while True:
            sequence = sequence % 1000
            if male != bool(sequence % 2):
                sequence += 1
                continue
            number = make_national_id(region, birth, sequence)
            if number not in self.ids:
                self.ids.add(number)
                return number
            sequence += 2

    # ---- people --------------------------------------------------------------------------------
    def given_name(self, male: bool) -> str:
        rng = self.rng
        own = _MALE_CHARS if male else _FEMALE_CHARS
        pool = own + _SHARED_CHARS
        if rng.random() < 0.25:
            return rng.choice(own)
        return rng.choice(pool) + rng.choice(own)

    def person(self, index: int, birth_year: int, family: _Person | None = None, twin: bool = False) -> _Person:
        rng = self.rng
        male = rng.random() < 0.52
        if family is None and rng.random() < 0.05:
            full = rng.choice(_COMMON_NAMES_M if male else _COMMON_NAMES_F)
            surname, given = full[0], full[1:]
        else:
            surname = family.surname if family else rng.choices(_SURNAME_CHARS, _SURNAME_WEIGHTS)[0]
            given = self.given_name(male)
            if family and twin and rng.random() < 0.6 and len(family.given) == 2:
                given = family.given[0] + self.given_name(male)[-1]  # 张子涵 / 张子轩
            while family and given == family.given:
                given = self.given_name(male)
        if twin and family:
            birth = family.birth
            region = family.national_id[:6]
            national_id = self.national_id(region, birth, male, near=int(family.national_id[14:17]) + 1)
        else:
            birth = date(birth_year, 1, 1) + timedelta(days=rng.randrange(365))
            region = family.national_id[:6] if family else rng.choice(_REGIONS)
            national_id = self.national_id(region, birth, male)
        first = min(max(birth.year + 14, 2000), THIS_YEAR)
        phones = [(first, self.new_phone(first))]
        for _ in range(rng.choices((0, 1, 2), (50, 35, 15))[0]):
            since = rng.randrange(phones[-1][0] + 1, THIS_YEAR + 2)
            if since > THIS_YEAR:
                break
            if rng.random() < 0.5:
                self.released.append((since, phones[-1][1]))
            phones.append((since, self.new_phone(since)))
        email = None
        if rng.random() < 0.7:
            if rng.random() < 0.4:
                email = f"{rng.randrange(10_000_000, 3_000_000_000)}@qq.com"
            else:
                handle = _SURNAME_READINGS.get(surname, "x") + "".join(_GIVEN_READINGS[c] for c in given)
                email = f"{handle}{rng.randrange(1, 1000)}@{rng.choice(_MAIL_DOMAINS)}"
        person = _Person(f"P{index:07d}", surname, given, male, birth, national_id, phones, email)
        person.legacy_id = birth.year < 1980 and rng.random() < 0.3
        if family is not None:
            person.parent_phone = family.parent_phone
        return person

    def career(self, person: _Person, start_level: int, start_year: int) -> None:
        """Numbers over the years: study levels, then perhaps a post."""
        rng = self.rng
        level, year = start_level, start_year
        chance_next = {1: 0.45, 2: 0.35}
        while level <= 3 and year <= THIS_YEAR:
            number = self.number(level, year)
            end = year + _YEARS_OF_STUDY[level]
            roll = rng.random()
            status = "退学" if roll < 0.01 else "休学" if roll < 0.02 and end > THIS_YEAR else None
            if status is None:
                status = "毕业" if end <= THIS_YEAR else "在读"
            person.roles.append((number, f"student{level}", year, status))
            if status != "毕业" or level == 3 or rng.random() >= chance_next[level]:
                break
            level, year = level + 1, end + (1 if rng.random() < 0.15 else 0)
        if level == 3 and person.roles[-1][3] == "毕业" and rng.random() < 0.4:
            hired = person.roles[-1][2] + 4 + rng.randrange(0, 3)
            if hired <= THIS_YEAR:
                self.post(person, hired, "教师")
        elif person.roles[-1][3] == "毕业" and rng.random() < 0.03:
            hired = person.roles[-1][2] + _YEARS_OF_STUDY[level] + 1
            if hired <= THIS_YEAR:
                self.post(person, hired, rng.choice(("行政", "教辅")))

    def post(self, person: _Person, year: int, kind: str) -> None:
        number = self.number(6, year)
        age = THIS_YEAR - person.birth.year
        status = "退休" if age >= 60 else "离职" if self.rng.random() < 0.05 else "在职"
        person.roles.append((number, kind, year, status))

    # ---- rows ----------------------------------------------------------------------------------
    def write_name(self, person: _Person, latin: float = 0.0) -> str:
        rng = self.rng
        roll = rng.random()
        name = person.name
        if roll < latin:
            sur = _SURNAME_READINGS.get(person.surname) or _GIVEN_READINGS[person.surname]
            giv = "".join(_GIVEN_READINGS[c] for c in person.given)
            style = rng.randrange(4)
            if style == 0:
                return f"{sur.capitalize()} {giv.capitalize()}"
            if style == 1:
                return f"{giv.upper()} {sur.upper()}"
            if style == 2:
                return f"{sur.capitalize()}, {giv.capitalize()}"
            return f"{sur.upper()} {giv.capitalize()}"
        roll -= latin
        if roll < 0.03:  # a same-pinyin typo in one character
            at = rng.randrange(len(name))
            group = _HOMOPHONE_OF.get(name[at])
            if group:
                return name[:at] + rng.choice([c for c in group if c != name[at]]) + name[at + 1 :]
        elif roll < 0.06:
            return "".join(_TRADITIONAL.get(c, c) for c in name)
        elif roll < 0.075:
            return f"{person.surname} {person.given}"
        elif roll < 0.085:
            return f"{person.surname}\u3000{person.given}"
        elif roll < 0.09:
            return f" {name} "
        return name

    def write_date(self, value: date, source: str) -> str:
        rng = self.rng
        if rng.random() < 0.02:
            return ""
        style = _SOURCE_STYLE[source][0] if rng.random() < 0.8 else rng.randrange(len(_DATE_FORMATS))
        return _DATE_FORMATS[style](value)

    def write_phone(self, phone: str | None, source: str) -> str:
        rng = self.rng
        if phone is None or rng.random() < 0.05:
            return ""
        style = _SOURCE_STYLE[source][1] if rng.random() < 0.75 else rng.randrange(len(_PHONE_FORMATS))
        return _PHONE_FORMATS[style](phone)

    def write_id(self, person: _Person, legacy_ok: bool) -> tuple[str, str]:
        """(the ID as written, "1" valid / "0" mistyped / "" absent)."""
        rng = self.rng
        roll = rng.random()
        number = person.national_id
        if roll < 0.09:
            return "", ""
        if roll < 0.13:
            at = rng.randrange(17)
            digit = rng.choice([d for d in "0123456789" if d != number[at]])
            return number[:at] + digit + number[at + 1 :], "0"
        if legacy_ok and person.legacy_id and rng.random() < 0.5:
            return number[:6] + number[8:17], "1"
        if number[-1] == "X" and rng.random() < 0.3:
            number = number[:-1] + "x"
        return number, "1"

    def emit(self, source: str, row: tuple[str, ...], person: _Person, valid: str = "") -> None:
        self.rows[source].append(row)
        self.truth.append((source, row[0], person.pid, valid))

    def records(self, person: _Person) -> None:
        rng = self.rng
        gender = "男" if person.male else "女"
        college = rng.choice(_COLLEGES)
        for number, kind, year, status in person.roles:
            last_year = min(THIS_YEAR, year + 4) if status in ("毕业", "退学", "离职") else THIS_YEAR
            if kind.startswith("student"):
                level = int(kind[-1])
                phone = person.phone_at(year)
                if person.parent_phone and level == 1 and rng.random() < 0.7:
                    phone = person.parent_phone
                email = person.email if rng.random() < 0.6 else f"{number}@stu.example.edu.cn"
                nid, valid = self.write_id(person, legacy_ok=False)
                row = (
                    number,
                    self.write_name(person),
                    gender,
                    self.write_date(person.birth, "student"),
                    nid,
                    _LEVELS[level],
                    str(year),
                    college,
                    self.write_phone(phone, "student"),
                    (email if rng.random() < 0.9 else "") or "",
                    status,
                )
                self.emit("student", row, person, valid)
                affiliation, mail = "student", f"{number}@stu.example.edu.cn"
            else:
                nid, valid = self.write_id(person, legacy_ok=True)
                handle = _SURNAME_READINGS.get(person.surname, "x") + "".join(_GIVEN_READINGS[c] for c in person.given)
                mail = self.work_mail(handle, number)
                roll = rng.random()
                email = mail if roll < 0.7 else (person.email or "") if roll < 0.9 else ""
                row = (
                    number,
                    self.write_name(person, latin=0.12),
                    gender,
                    self.write_date(person.birth, "hr"),
                    nid,
                    kind,
                    college if kind == "教师" else rng.choice(_DEPARTMENTS),
                    self.write_phone(person.phone_at(THIS_YEAR), "hr"),
                    email,
                    status,
                )
                self.emit("hr", row, person, valid)
                affiliation = "faculty" if kind == "教师" else "staff"
            cn = self.write_name(person, latin=0.03 if affiliation != "student" else 0.0)
            cas_phone = self.write_phone(person.phone_at(last_year), "cas")
            self.emit("cas", (number, cn, mail, cas_phone, affiliation), person)
            if rng.random() < 0.8:
                bill_phone = person.phone_at(rng.randrange(year, last_year + 1))
                self.emit(
                    "billing",
                    (number, self.write_name(person), self.write_phone(bill_phone, "billing")),
                    person,
                )

    # ---- the campus ----------------------------------------------------------------------------
    def example_people(self) -> None:
        """张帅 of the issue, with his four numbers, and a second 张帅 born the same year."""
        self.mails.add("zhangshuai0032@example.edu.cn")
        shuai = _Person(
            EXAMPLE_PERSON,
            "张",
            "帅",
            True,
            date(1992, 5, 17),
            self.national_id("110108", date(1992, 5, 17), True),
            [],
            "zhangshuai92@163.com",
        )
        shuai.phones = [(2006, self.new_phone(2006)), (2016, self.new_phone(2016))]
        shuai.roles = [
            ("1120101234", "student1", 2010, "毕业"),
            ("2120143257", "student2", 2014, "毕业"),
            ("3120190289", "student3", 2019, "毕业"),
            ("6120170032", "教师", 2017, "在职"),
        ]
        other = _Person(
            EXAMPLE_HOMONYM,
            "张",
            "帅",
            True,
            date(1992, 11, 3),
            self.national_id("320102", date(1992, 11, 3), True),
            [],
            None,
        )
        other.phones = [(2006, self.new_phone(2006))]
        other.roles = [
            (self.number(1, 2011), "student1", 2011, "毕业"),
            (self.number(2, 2015), "student2", 2015, "毕业"),
        ]
        for person in (shuai, other):
            self.records_exact(person)

    def records_exact(self, person: _Person) -> None:
        """The example people's rows: clean names and IDs (their test is about numbers, not noise)."""
        for number, kind, year, status in person.roles:
            birth = _DATE_FORMATS[0](person.birth)
            phone = person.phone_at(year)
            if kind.startswith("student"):
                level = int(kind[-1])
                row = (
                    number,
                    person.name,
                    "男",
                    birth,
                    person.national_id,
                    _LEVELS[level],
                    str(year),
                    "计算机学院",
                    phone,
                    person.email or "",
                    status,
                )
                self.emit("student", row, person, "1")
                self.emit("cas", (number, person.name, f"{number}@stu.example.edu.cn", phone, "student"), person)
            else:
                row = (
                    number,
                    "Zhang Shuai",
                    "男",
                    birth,
                    person.national_id,
                    kind,
                    "计算机学院",
                    _PHONE_FORMATS[2](person.phone_at(THIS_YEAR)),
                    f"zhangshuai{number[-4:]}@example.edu.cn",
                    status,
                )
                self.emit("hr", row, person, "1")
                self.emit(
                    "cas",
                    (
                        number,
                        person.name,
                        f"zhangshuai{number[-4:]}@example.edu.cn",
                        _PHONE_FORMATS[1](phone),
                        "faculty",
                    ),
                    person,
                )

    def generate(self, people: int) -> int:
        rng = self.rng
        self.example_people()
        index = 2
        while index < people:
            start = rng.choices((1, 2, 3, 6), (70, 14, 4, 12))[0]
            if start == 6:
                birth_year = rng.randrange(1958, 1996)
                person = self.person(index, birth_year)
                self.post(
                    person,
                    rng.randrange(max(FIRST_YEAR - 10, birth_year + 25), THIS_YEAR + 1),
                    rng.choice(("教师", "教师", "教师", "行政", "教辅")),
                )
                self.records(person)
                index += 1
                continue
            year = rng.randrange(FIRST_YEAR, THIS_YEAR + 1)
            age = {1: 18, 2: 22, 3: 25}[start]
            person = self.person(index, year - age - rng.choice((-1, 0, 0, 0, 1)))
            self.career(person, start, year)
            family = start == 1 and index + 1 < people and rng.random() < 0.03  # a sibling on campus too
            if family:
                person.parent_phone = self.new_phone(year)
            self.records(person)
            index += 1
            if family:
                twin = rng.random() < 0.4
                sibling = self.person(index, person.birth.year + rng.randrange(1, 6), family=person, twin=twin)
                sibling_year = year if twin else min(THIS_YEAR, year + sibling.birth.year - person.birth.year)
                self.career(sibling, 1, sibling_year)
                self.records(sibling)
                index += 1
        return index

    def write(self, out_dir: Path) -> dict[str, int]:
        out_dir.mkdir(parents=True, exist_ok=True)
        headers = {"student": STUDENT_HEADER, "hr": HR_HEADER, "cas": CAS_HEADER, "billing": BILLING_HEADER}
        counts = {}
        for source in SOURCES:
            rows = sorted(self.rows[source])
            with (out_dir / f"{source}.csv").open("w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(headers[source])
                writer.writerows(rows)
            counts[source] = len(rows)
        with (out_dir / "truth.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(TRUTH_HEADER)
            writer.writerows(self.truth)
        return counts


def generate_campus(people: int, seed: int, out_dir: Path) -> CampusFiles:
    """Write a campus of `people` people (at least 2) into `out_dir`; the same seed gives the same files."""
    if people < 2:
        raise ValueError("a campus needs at least 2 people (the example 张帅 and his homonym)")
    campus = _Campus(seed)
    made = campus.generate(people)
    counts = campus.write(Path(out_dir))
    return CampusFiles(directory=Path(out_dir), people=made, counts=counts)
