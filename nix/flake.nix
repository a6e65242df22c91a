# Builds the same enclave image as `make image`, with every input fetched by Nix.
#
#   nix build ./nix#enclave-image      # result/enclave.eif, result/pcrs.json
#
# The pins are the ones in imagebuild/inputs.lock.json (read at evaluation time), so the EIF and
# PCRs are byte-for-byte those of the Debian-based build; the builder is our own Python code.
{
  description = "memwal-enclave: reproducible AWS Nitro enclave image";

  inputs.nixpkgs = {
    # nixos-23.05, pinned by revision and content hash (provides CPython 3.11 + cryptography).
    url = "github:NixOS/nixpkgs/70bdadeb94ffc8806c0570eb5c2695ad29f0e421";
    narHash = "sha256-LWvKHp7kGxk/GEtlrGYV68qIvPHkU9iToomNFGagixU=";
  };

  outputs = { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
    in {
      packages.${system} = rec {
        enclave-image = pkgs.callPackage ./enclave-image.nix { };
        default = enclave-image;
      };
    };
}
