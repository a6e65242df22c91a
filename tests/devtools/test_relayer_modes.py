"""What `make run` / `make run-plain` give the relayer, and the appliance's refusal to mix embedding spaces."""

from __future__ import annotations

import pytest

from devtools.appliance_layout import LEGACY_EMBEDDING_SPACE, ApplianceLayout, LayoutError, claim_embedding_space
from devtools.relayer_modes import relayer_mode_environment
from relayer.embedding_models import LOCAL_MODEL_ID
from relayer.settings import Settings

BASE = {"MEMWAL_PACKAGE_ID": "0x1", "MEMWAL_REGISTRY_ID": "0x2", "EMBEDDING_MODEL": "text-embedding-3-small"}


class TestModes:
    def test_local_private_is_a_valid_relayer_configuration(self):
        environment = {**BASE, **relayer_mode_environment(embeddings="local", egress_policy="private")}
        settings = Settings.from_environ(environment)
        settings.validate_embeddings()
        assert (settings.embedding_provider, settings.embedding_model, settings.egress_policy) == ("local", LOCAL_MODEL_ID, "private")

    def test_openai_leaves_the_stand_in_configuration_alone(self):
        assert relayer_mode_environment(embeddings="openai") == {}

    def test_unknown_choices(self):
        with pytest.raises(ValueError, match="embeddings must be one of"):
            relayer_mode_environment(embeddings="onnx")


class TestEmbeddingSpace:
    def layout(self, tmp_path) -> ApplianceLayout:
        return ApplianceLayout(tmp_path, 8443, tapped=False)

    def test_a_new_directory_records_the_space(self, tmp_path):
        claim_embedding_space(self.layout(tmp_path), "local x", has_data=False)
        claim_embedding_space(self.layout(tmp_path), "local x", has_data=True)
        assert (tmp_path / "embedding-space.txt").read_text() == "local x\n"

    def test_a_different_space_is_refused_with_the_way_out(self, tmp_path):
        claim_embedding_space(self.layout(tmp_path), "local x", has_data=False)
        with pytest.raises(LayoutError, match="embedded with local x; this run embeds with openai y.*--fresh"):
            claim_embedding_space(self.layout(tmp_path), "openai y", has_data=True)

    def test_data_from_before_the_record_is_the_stand_in_s(self, tmp_path):
        with pytest.raises(LayoutError, match=f"embedded with {LEGACY_EMBEDDING_SPACE}"):
            claim_embedding_space(self.layout(tmp_path), "local x", has_data=True)
        claim_embedding_space(self.layout(tmp_path), LEGACY_EMBEDDING_SPACE, has_data=True)
