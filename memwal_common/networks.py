"""Network presets: what ``SUI_NETWORK=mainnet|testnet`` selects when an operator sets nothing else.

Every value can be overridden by its own environment variable (the relayer's and sidecar's settings apply
the preset first, then the explicit variables). Sources, read from MystenLabs/MemWal:
- package and registry ids, the default Seal key servers, the testnet committee aggregator and the gRPC
  endpoint form: ``docs/relayer/self-hosting.md`` @ 02ce26efc438ea23ffead7a606b21ea383b507ac;
- the mainnet Seal key-server pair: ``services/server/scripts/seal-config.ts`` @ a2f0c9a8d0bcd891b7649c7ae57c1a5102b53305;
- Walrus endpoints: ``services/server/.env.example`` (mainnet) and ``packages/sdk/src/manual.ts`` (testnet),
  both @ a2f0c9a8d0bcd891b7649c7ae57c1a5102b53305;
- GraphQL endpoints: the ``graphql.<network>.sui.io`` hosts the official memwal Python SDK 0.2.x queries.
JSON-RPC has no preset: Sui Foundation full nodes stopped serving it in 2026, so ``SUI_PROTOCOL=jsonrpc``
needs an explicit ``SUI_RPC_URL`` from a provider that still does.
"""

from __future__ import annotations

from dataclasses import dataclass

from memwal_common.environment import SealServerConfig

LOCALNET = "localnet"  # no preset: the localnet writes its own configuration (localnet.json)


@dataclass(frozen=True)
class NetworkPreset:
    name: str
    chain_identifier: str  # first four bytes of the genesis checkpoint digest, hex: `relayer check` compares it
    sui_graphql_url: str
    sui_grpc_url: str
    walrus_publisher_url: str
    walrus_aggregator_urls: tuple[str, ...]
    walrus_package_id: str
    walrus_storage_epochs: int
    memwal_package_id: str
    memwal_registry_id: str
    seal_servers: tuple[SealServerConfig, ...]


MAINNET = NetworkPreset(
    name="mainnet",
    chain_identifier="35834a8a",
    sui_graphql_url="https://graphql.mainnet.sui.io/graphql",
    sui_grpc_url="https://fullnode.mainnet.sui.io:443",
    walrus_publisher_url="https://publisher.walrus-mainnet.walrus.space",
    walrus_aggregator_urls=("https://aggregator.walrus-mainnet.walrus.space",),
    walrus_package_id="0xfdc88f7d7cf30afab2f82e8380d11ee8f70efb90e863d1de8616fae1bb09ea77",
    walrus_storage_epochs=3,
    memwal_package_id="0xcee7a6fd8de52ce645c38332bde23d4a30fd9426bc4681409733dd50958a24c6",
    memwal_registry_id="0x0da982cefa26864ae834a8a0504b904233d49e20fcc17c373c8bed99c75a7edd",
    seal_servers=(
        SealServerConfig("0x145540d931f182fef76467dd8074c9839aea126852d90d18e1556fcbbd1208b6"),
        SealServerConfig("0xe0eb52eba9261b96e895bbb4deca10dcd64fbc626a1133017adcd5131353fd10"),
    ),
)

TESTNET = NetworkPreset(
    name="testnet",
    chain_identifier="4c78adac",
    sui_graphql_url="https://graphql.testnet.sui.io/graphql",
    sui_grpc_url="https://fullnode.testnet.sui.io:443",
    walrus_publisher_url="https://publisher.walrus-testnet.walrus.space",
    walrus_aggregator_urls=("https://aggregator.walrus-testnet.walrus.space",),
    walrus_package_id="0xd84704c17fc870b8764832c535aa6b11f21a95cd6f5bb38a9b07d2cf42220c66",
    walrus_storage_epochs=5,
    memwal_package_id="0xcf6ad755a1cdff7217865c796778fabe5aa399cb0cf2eba986f4b582047229c6",
    memwal_registry_id="0xe80f2feec1c139616a86c9f71210152e2a7ca552b20841f2e192f99f75864437",
    # The original independent pair stays the default so existing memories stay decryptable; the committee
    # below is opt-in (SEAL_SERVER_CONFIGS, with the pair in SEAL_LEGACY_DECRYPT_KEY_SERVERS).
    seal_servers=(
        SealServerConfig("0x73d05d62c18d9374e3ea529e8e0ed6161da1a141a94d3f76ae3fe4e99356db75"),
        SealServerConfig("0xf5d14a81a982144ae441cd7d64b09027f116a468bd36e7eca494f750591623c8"),
    ),
)

TESTNET_SEAL_COMMITTEE = SealServerConfig(
    "0xb012378c9f3799fb5b1a7083da74a4069e3c3f1c93de0b27212a5799ce1e1e98", 1,
    "https://seal-aggregator-testnet.mystenlabs.com",
)

PRESETS = {preset.name: preset for preset in (MAINNET, TESTNET)}


def preset_for(network: str) -> NetworkPreset | None:
    """The preset of a public network; ``None`` for ``localnet`` and custom networks (set every URL)."""
    return PRESETS.get(network)
