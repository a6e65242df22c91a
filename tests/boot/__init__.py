"""Boot tests: the enclave image under QEMU (TCG), `make test-boot`; never in the image.

    test_boot.py       the production EIF, unchanged, to the runtime's first wait (configuration over vsock)
    test_full_boot.py  the full test boot: the test EIF under QEMU behind the host proxy; attestation,
                       sealed provisioning, one official-SDK remember → recall, driven from the host
    overlay.py         the test EIF: production EIF + test overlay + test command line
    guest_init.py      /testinit, PID 1 of the full test boot
    qemu.py            the QEMU harness (microvm, serial console, user networking with explicit forwards)
    qemu_appliance.py  the host side of the full test boot: devtools' appliance with a QEMU enclave

Production boot and full test boot, exactly what differs (everything else is the same bytes):

    kernel          same bzImage
    command line    + ``rdinit=/testinit ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off`` (start /testinit;
                    a static address for eth0 through the kernel's IP_PNP)
    ramdisk[0]      production bootstrap ‖ the test overlay: /testinit and the dev-only modules of the
                    simulated entry point: devtools/__init__.py, devtools/simulated_enclave.py,
                    attestation/simulator.py, attestation/testing.py (none is in the production image)
    ramdisk[1]      the production application ramdisk, byte for byte: PCR2 is identical (asserted)
    PCR0, PCR1      differ (they measure the command line and ramdisk[0])
    PID 1           /init: mounts, loopback, nitro-cli heartbeat, random pool, exec ``python3.11 -m
                    enclave``; /testinit: /init's same steps, then imports every module of the image,
                    reads the measurements, exec ``python3.11 -m devtools.simulated_enclave --transport
                    tcp:10.0.2.100 …`` (the same boot code, enclave/boot.py, with another platform)
    attester        /dev/nsm (the NSM, AWS root) → the NSM simulator signing under a throwaway test root,
                    printed on the console; it reports the test EIF's PCR0/1/2 as measured on the host by
                    imagebuild.pcr and read over a QEMU forward, as the Nitro hypervisor hands the NSM the
                    measurements of the image it loaded (they cannot be inside the image they measure)
    channels        vsock (CID 3 ports 7000 and 81NN, listen on 8443) → TCP over virtio-net, QEMU user
                    networking with ``restrict=on``: the guest dials 10.0.2.100:7000/81NN (forwarded to the
                    host proxy on 127.0.0.1:N+offset) and listens on :8443 (forwarded from the host)
    devices         virtio-rng stands in for the NSM's hardware RNG; virtio-net is added; no vsock or NSM
                    device (QEMU 7.2 has none), so the heartbeat is logged as skipped in both boots
    parent          nitro-cli + ``python -m host_proxy --manifest … `` over vsock → QEMU + the same host
                    proxy with ``--transport tcp:127.0.0.1+offset``
"""
