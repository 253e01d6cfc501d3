"""Error rates: Levenshtein alignment with substitutions, deletions and insertions counted apart
(CER over characters; WER over space-separated words)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Errors:
    sub: int = 0
    dels: int = 0
    ins: int = 0
    ref: int = 0  # reference length

    @property
    def total(self) -> int:
        return self.sub + self.dels + self.ins

    @property
    def rate(self) -> float:
        return self.total / self.ref if self.ref else float(self.total > 0)

    def __add__(self, o: Errors) -> Errors:
        return Errors(self.sub + o.sub, self.dels + o.dels, self.ins + o.ins, self.ref + o.ref)

    def as_dict(self) -> dict[str, float]:
        return {"rate": self.rate, "substitutions": self.sub, "deletions": self.dels, "insertions": self.ins,
                "reference_length": self.ref}  # fmt: skip


def align(ref: list, hyp: list) -> Errors:
    """Minimum edit distance; among equal-cost alignments, the one with most substitutions (as sclite)."""
    n, m = len(ref), len(hyp)
    # cost[i][j] = (edits, -subs) of ref[:i] vs hyp[:j]; back-pointers recover S/D/I
    prev = [(j, 0, 0, 0, j) for j in range(m + 1)]  # (cost, neg_sub, sub, del, ins)
    for i in range(1, n + 1):
        cur = [(i, 0, 0, i, 0)]
        for j in range(1, m + 1):
            c_sub = prev[j - 1]
            same = ref[i - 1] == hyp[j - 1]
            cands = [
                (c_sub[0] + (0 if same else 1), c_sub[1] - (0 if same else 1), c_sub[2] + (0 if same else 1), c_sub[3], c_sub[4]),
                (prev[j][0] + 1, prev[j][1], prev[j][2], prev[j][3] + 1, prev[j][4]),
                (cur[j - 1][0] + 1, cur[j - 1][1], cur[j - 1][2], cur[j - 1][3], cur[j - 1][4] + 1),
            ]
            cur.append(min(cands))
        prev = cur
    _, _, s, d, ins = prev[m]
    return Errors(s, d, ins, n)


def cer(ref: str, hyp: str) -> Errors:
    return align([c for c in ref if not c.isspace()], [c for c in hyp if not c.isspace()])


def wer(ref: str, hyp: str) -> Errors:
    return align(ref.split(), hyp.split())
