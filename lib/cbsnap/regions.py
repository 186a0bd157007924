"""The Tencent Cloud regions cbsnap accepts as copy destinations.

A copy to a region the account cannot use fails only in CopySnapshotCrossRegions
(``InvalidParameterValue``); refusing unknown names when the request is read gives the
caller a 9003 at once instead of a copy failure hours later. The list is the regions of
Tencent's DescribeRegions answer for CBS as the emulator knows them
(``cbsnap_emulator.state.KNOWN_REGIONS`` holds the same names; a test pins them together).
"""

from __future__ import annotations

KNOWN_REGIONS: frozenset[str] = frozenset(
    {
        "ap-guangzhou", "ap-shanghai", "ap-nanjing", "ap-beijing", "ap-chengdu", "ap-chongqing",
        "ap-hongkong", "ap-taipei", "ap-singapore", "ap-jakarta", "ap-bangkok", "ap-seoul", "ap-tokyo",
        "ap-mumbai", "na-siliconvalley", "na-ashburn", "na-toronto", "eu-frankfurt", "eu-moscow",
        "sa-saopaulo", "ap-shanghai-fsi", "ap-shenzhen-fsi", "ap-beijing-fsi", "ap-guangzhou-open",
    }
)  # fmt: skip
