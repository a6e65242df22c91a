"""Small pieces shared by the relayer and the sidecar processes: secret values and env parsing."""
