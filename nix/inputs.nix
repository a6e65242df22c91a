# Every pinned input of imagebuild/inputs.lock.json as a Nix fixed-output download, laid out the
# way `python -m imagebuild build --cache DIR` expects (DIR/debs/*.deb, DIR/wheels/*.whl).
{ lib, fetchurl, runCommand }:

let
  lock = builtins.fromJSON (builtins.readFile ../imagebuild/inputs.lock.json);

  baseName = path: lib.last (lib.splitString "/" path);

  fetchDeb = deb: {
    name = baseName deb.filename;
    file = fetchurl {
      urls = map (mirror: "${mirror}/${deb.filename}") lock.debian_archives.${deb.archive};
      sha256 = deb.sha256;
    };
  };

  # PyPI serves every file under packages/<python tag>/<first letter>/<project>/<file>.
  fetchWheel = wheel:
    let
      parts = lib.splitString "-" wheel.filename;
      project = builtins.head parts;
      pythonTag = builtins.elemAt parts (builtins.length parts - 3);
    in {
      name = wheel.filename;
      file = fetchurl {
        url = "https://files.pythonhosted.org/packages/${pythonTag}/${builtins.substring 0 1 project}/${project}/${wheel.filename}";
        sha256 = wheel.sha256;
      };
    };

  debs = map fetchDeb ([ lock.kernel.deb ] ++ lock.runtime_debs);
  wheels = map fetchWheel lock.wheels;

  copyAll = directory: items:
    lib.concatMapStrings (item: "cp ${item.file} $out/${directory}/${item.name}\n") items;
in
runCommand "memwal-enclave-inputs" { } ''
  mkdir -p $out/debs $out/wheels
  ${copyAll "debs" debs}
  ${copyAll "wheels" wheels}
''
