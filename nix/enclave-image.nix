# The enclave image: our Python builder run on the Nix-fetched inputs. The builder re-checks every
# SHA-256 and never downloads when the cache is complete, so this derivation needs no network.
{ lib, stdenv, callPackage, python311, util-linux, coreutils }:

let
  inputs = callPackage ./inputs.nix { };
  lock = builtins.fromJSON (builtins.readFile ../imagebuild/inputs.lock.json);
  python = python311.withPackages (packages: [ packages.cryptography packages.packaging ]);

  # The builder, the lock files, pyproject.toml (package data) and every Python package of the tree: the
  # builder itself picks the modules `python -m enclave` imports (imagebuild/contents.py).
  packages = builtins.attrNames (lib.filterAttrs
    (name: type: type == "directory" && builtins.pathExists (../. + "/${name}/__init__.py"))
    (builtins.readDir ../.));
  wanted = [ "requirements.lock" "pyproject.toml" ] ++ packages;
  source = builtins.path {
    name = "memwal-enclave-source";
    path = ../.;
    filter = path: type:
      let relative = lib.removePrefix (toString ../. + "/") (toString path);
      in lib.any (top: relative == top || lib.hasPrefix "${top}/" relative) wanted
         && !(lib.hasInfix "__pycache__" relative);
  };
in
stdenv.mkDerivation {
  pname = "memwal-enclave-image";
  version = builtins.substring 0 16 (builtins.hashFile "sha256" ../imagebuild/inputs.lock.json);
  src = source;
  dontConfigure = true;
  dontFixup = true;
  # unshare and chroot run the build-time import smoke test (imagebuild/smoke.py) in the unpacked image.
  nativeBuildInputs = [ python util-linux coreutils ];
  SOURCE_DATE_EPOCH = toString lock.source_date_epoch;
  buildPhase = ''
    runHook preBuild
    cp -r --no-preserve=mode ${inputs} cache
    python -m imagebuild build --out $out --cache cache
    runHook postBuild
  '';
  installPhase = "true";
}
