// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {KeyManagerFixture} from "./utils/KeyManagerFixture.sol";
import {KeyManager} from "../src/KeyManager.sol";

/// @notice verifyAttestation and verifySignatureChain: true for exactly what the master key signed, false (never a
/// revert) for anything else.
contract VerificationTest is KeyManagerFixture {
    uint256 internal constant APP_PK = 0xA99;
    uint256 internal constant DERIVED_PK = 0xDE1;
    bytes20 internal constant APP_ID = hex"00112233445566778899aabbccddeeff00112233";
    string internal constant HOSTNAME = "web";
    bytes32 internal constant APP_DATA = keccak256("app data");

    // Public dstack simulator vector (test/vectors/dstack-simulator.json).
    bytes20 internal constant DSTACK_APP_ID = hex"5bb4ff9a3837357f19dc176407a5709c62eb6c56";
    bytes internal constant DSTACK_APP_PUB = hex"02818494263695e8839122dbd88e281d7380622999df4e60a14befa0f2d096fc7c";
    bytes internal constant DSTACK_KMS_SIGNATURE =
        hex"9e618603e72d01fedb82deff6daf2d62a572becf0059eec3f89c1ab40e1f2e594d2a283f843f34e8f39e4cc49a612496ce67223a12ac923f8efe330346dfc6c500";
    // kms_root_pub_compressed 0321529e…85b6 of the vector, decompressed with @noble/curves
    // (`secp256k1.Point.fromHex(hex).toBytes(false).slice(1)`); its keccak address is the vector's kms_root_address
    // 0xa7f6043c29f9cc1d9d6acf554c53e0c6792aaeaf, which test_DstackRootKey checks.
    bytes internal constant DSTACK_KMS_ROOT_PUB64 =
        hex"21529e458424ab1f710a3a57ec4dad2fb195ddca572f7469242ba6c7563085b625053c7105c58a1771c2790619fe8261cdd351d3eb4184ab2c43e7bf0b29fddb";

    struct Chain {
        bytes20 appId;
        bytes derived;
        bytes app;
        bytes appSignature;
        bytes kmsSignature;
        string purpose;
    }

    function _verify(Chain memory c) internal view returns (bool) {
        return km.verifySignatureChain(c.appId, c.derived, c.app, c.appSignature, c.kmsSignature, c.purpose);
    }

    function _appDigest(string memory purpose, bytes memory derived) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(purpose, ":", _hexNo0x(derived)));
    }

    function _kmsDigest(bytes20 appId, bytes memory app) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("dstack-kms-issued:", appId, app));
    }

    /// @dev A chain per docs/protocol.md#keys-and-derivations rooted at MASTER_PK, built with vm.sign.
    function _chain() internal returns (Chain memory c) {
        c.appId = APP_ID;
        c.derived = _pubkey33(DERIVED_PK);
        c.app = _pubkey33(APP_PK);
        c.purpose = "test-purpose";
        c.appSignature = _sign(APP_PK, _appDigest(c.purpose, c.derived));
        c.kmsSignature = _sign(MASTER_PK, _kmsDigest(c.appId, c.app));
    }

    function _dstackChain(uint256 entry) internal pure returns (Chain memory c) {
        c.appId = DSTACK_APP_ID;
        c.app = DSTACK_APP_PUB;
        c.kmsSignature = DSTACK_KMS_SIGNATURE;
        if (entry == 0) {
            c.purpose = "test-purpose";
            c.derived = hex"02c1082e78670feed1c847db81dbd71be37e4d53200a746c0a89f0afa8173cf566";
            c.appSignature =
                hex"f50c51735a97072f0c98125ed61fc84e2fdb36e95990b9e57337dadc0e2a9712227f04e07209faecb8891d59ec144a6c13e411dc90b3423f28071bd3fe11978d01";
        } else if (entry == 1) {
            c.purpose = "signing";
            c.derived = hex"02c53a10a891f3c5d599539056edcfa080555ac975cae78e59b5d519dcdaf03389";
            c.appSignature =
                hex"c2ac442934a10d730c14b553e6b93e4db61aa7afa48b7aa51e649841115d6f4160a29b24a87e0ef4c02e37c10b176913f1449ebb41466fccdc44a6ef5d9b247300";
        } else {
            c.purpose = "";
            c.derived = hex"027458ba47c31272b5076edebdc1ecdaedef806b10d76dd0a209cbd1fa14a3f9cf";
            c.appSignature =
                hex"64ce2f1b381d04f7404fda78bdc942c314d89b7069d97eea1897e51b249dd3b1700995cbf7efe7ff04195dd6e31f153b702eeeeaffc5941510739dc39b9bd9cf01";
        }
    }

    function _bootstrapDstackRoot() internal {
        _setBlob(BOOTSTRAP_BLOB);
        vm.prank(owner);
        km.bootstrap(DSTACK_KMS_ROOT_PUB64);
    }

    // ------------------------------------------------------------ EIP-712 domain

    function test_DomainSeparator() public {
        vm.assertEq(km.DOMAIN_SEPARATOR(), _domainSeparator(address(km), block.chainid), "separator");
        (bytes1 fields, string memory name, string memory version, uint256 chainId, address verifyingContract,
            bytes32 salt, uint256[] memory extensions) = km.eip712Domain();
        vm.assertEq(uint8(fields), 0x0f, "fields");
        vm.assertEq(keccak256(bytes(name)), keccak256("KeyManager"), "name");
        vm.assertEq(keccak256(bytes(version)), keccak256("1"), "version");
        vm.assertEq(chainId, block.chainid, "chainId");
        vm.assertEq(verifyingContract, address(km), "verifyingContract");
        vm.assertEq(salt, bytes32(0), "salt");
        vm.assertEq(extensions.length, 0, "extensions");

        vm.chainId(4242);
        vm.assertEq(km.DOMAIN_SEPARATOR(), _domainSeparator(address(km), 4242), "recomputed after a chain id change");
    }

    // ------------------------------------------------------------ verifyAttestation

    function test_VerifyAttestation() public {
        _bootstrap();
        bytes memory signature = _sign(MASTER_PK, _attestationDigest(HOSTNAME, APP_DATA));
        vm.assertTrue(km.verifyAttestation(HOSTNAME, APP_DATA, signature), "v in {27,28}");
        (,, uint8 v) = _split(signature);
        vm.assertTrue(km.verifyAttestation(HOSTNAME, APP_DATA, _withV(signature, v - 27)), "v in {0,1}");
    }

    function test_VerifyAttestation_FalseBeforeBootstrap() public {
        bytes memory signature = _sign(MASTER_PK, _attestationDigest(HOSTNAME, APP_DATA));
        vm.assertFalse(km.verifyAttestation(HOSTNAME, APP_DATA, signature), "no master key yet");
        // Nor does a signature that recovers to nothing match the unset (zero) xPub.
        vm.assertFalse(km.verifyAttestation(HOSTNAME, APP_DATA, new bytes(65)), "zero signature");
    }

    function test_VerifyAttestation_FalseForOtherMessage() public {
        _bootstrap();
        bytes memory signature = _sign(MASTER_PK, _attestationDigest(HOSTNAME, APP_DATA));
        vm.assertFalse(km.verifyAttestation("web2", APP_DATA, signature), "hostname");
        vm.assertFalse(km.verifyAttestation("Web", APP_DATA, signature), "hostname case");
        vm.assertFalse(km.verifyAttestation(HOSTNAME, bytes32(uint256(APP_DATA) ^ 1), signature), "appData");
    }

    function test_VerifyAttestation_FalseForOtherSigner() public {
        _bootstrap();
        vm.assertFalse(
            km.verifyAttestation(HOSTNAME, APP_DATA, _sign(OTHER_PK, _attestationDigest(HOSTNAME, APP_DATA))), "signer"
        );
    }

    function test_VerifyAttestation_FalseForOtherDomain() public {
        _bootstrap();
        bytes32 structHash = _attestationStruct(HOSTNAME, APP_DATA);
        bytes memory otherContract = _sign(MASTER_PK, _typedFor(stranger, block.chainid, structHash));
        bytes memory otherChain = _sign(MASTER_PK, _typedFor(address(km), block.chainid + 1, structHash));
        bytes memory raw = _sign(MASTER_PK, structHash); // no EIP-712 envelope at all
        vm.assertFalse(km.verifyAttestation(HOSTNAME, APP_DATA, otherContract), "verifyingContract");
        vm.assertFalse(km.verifyAttestation(HOSTNAME, APP_DATA, otherChain), "chainId");
        vm.assertFalse(km.verifyAttestation(HOSTNAME, APP_DATA, raw), "bare struct hash");
    }

    function test_VerifyAttestation_AfterChainIdChange() public {
        _bootstrap();
        bytes memory before = _sign(MASTER_PK, _attestationDigest(HOSTNAME, APP_DATA));
        vm.chainId(block.chainid + 1);
        vm.assertFalse(km.verifyAttestation(HOSTNAME, APP_DATA, before), "old chain's signature");
        vm.assertTrue(
            km.verifyAttestation(HOSTNAME, APP_DATA, _sign(MASTER_PK, _attestationDigest(HOSTNAME, APP_DATA))),
            "new chain's signature"
        );
    }

    function test_VerifyAttestation_FalseForMalformedSignature() public {
        _bootstrap();
        bytes memory good = _sign(MASTER_PK, _attestationDigest(HOSTNAME, APP_DATA));
        (bytes32 r, bytes32 s, uint8 v) = _split(good);
        vm.assertFalse(km.verifyAttestation(HOSTNAME, APP_DATA, abi.encodePacked(r, s)), "64 bytes (no v)");
        vm.assertFalse(km.verifyAttestation(HOSTNAME, APP_DATA, abi.encodePacked(good, uint8(0))), "66 bytes");
        vm.assertFalse(km.verifyAttestation(HOSTNAME, APP_DATA, ""), "empty");
        vm.assertFalse(km.verifyAttestation(HOSTNAME, APP_DATA, abi.encodePacked(r, s, v, v)), "v twice");
        vm.assertFalse(km.verifyAttestation(HOSTNAME, APP_DATA, _withV(good, 2)), "v = 2");
        vm.assertFalse(km.verifyAttestation(HOSTNAME, APP_DATA, _withV(good, 26)), "v = 26");
        vm.assertFalse(km.verifyAttestation(HOSTNAME, APP_DATA, _withV(good, 29)), "v = 29");
        vm.assertFalse(km.verifyAttestation(HOSTNAME, APP_DATA, abi.encodePacked(bytes32(0), s, v)), "r = 0");
        vm.assertFalse(km.verifyAttestation(HOSTNAME, APP_DATA, abi.encodePacked(r, bytes32(0), v)), "s = 0");
        vm.assertFalse(km.verifyAttestation(HOSTNAME, APP_DATA, abi.encodePacked(bytes32(N), s, v)), "r = n");
        vm.assertTrue(km.verifyAttestation(HOSTNAME, APP_DATA, good), "the original still verifies");
    }

    function test_VerifyAttestation_FalseForHighS() public {
        testFuzz_VerifyAttestation_FalseForHighS(APP_DATA);
    }

    function testFuzz_VerifyAttestation_FalseForHighS(bytes32 appData) public {
        _bootstrap();
        bytes memory low = _sign(MASTER_PK, _attestationDigest(HOSTNAME, appData));
        vm.assertTrue(km.verifyAttestation(HOSTNAME, appData, low), "low s");
        // The twin recovers to the same key with ecrecover, but only the canonical form is accepted.
        (bytes32 r, bytes32 s, uint8 v) = _split(_highS(low));
        vm.assertEq(ecrecover(_attestationDigest(HOSTNAME, appData), v, r, s), vm.addr(MASTER_PK), "twin recovers");
        vm.assertFalse(km.verifyAttestation(HOSTNAME, appData, _highS(low)), "high s");
    }

    function test_VerifyAttestation_FalseForRandomBytes() public {
        testFuzz_VerifyAttestation_FalseForRandomBytes(abi.encodePacked(bytes32(uint256(1)), bytes32(uint256(2)), uint8(27)));
    }

    function testFuzz_VerifyAttestation_FalseForRandomBytes(bytes memory signature) public {
        _bootstrap();
        vm.assertFalse(km.verifyAttestation(HOSTNAME, APP_DATA, signature), "random bytes");
    }

    function testFuzz_VerifyAttestation_FalseForRandomSignature(bytes32 r, bytes32 s, uint8 v) public {
        _bootstrap();
        vm.assertFalse(km.verifyAttestation(HOSTNAME, APP_DATA, abi.encodePacked(r, s, v)), "random 65 bytes");
    }

    function test_VerifyAttestation_FalseForRandomSignature() public {
        testFuzz_VerifyAttestation_FalseForRandomSignature(bytes32(uint256(3)), bytes32(uint256(4)), 28);
    }

    // ------------------------------------------------------------ verifySignatureChain: vectors

    function test_DstackRootKey() public pure {
        vm.assertEq(
            address(uint160(uint256(keccak256(DSTACK_KMS_ROOT_PUB64)))),
            0xA7F6043C29f9cc1d9D6aCF554c53E0c6792AaEAf,
            "kms_root_address of the vector"
        );
    }

    function test_VerifySignatureChain_DstackVector() public {
        _bootstrapDstackRoot();
        vm.assertEq(km.masterPubkey(), hex"0321529e458424ab1f710a3a57ec4dad2fb195ddca572f7469242ba6c7563085b6", "root");
        vm.assertTrue(_verify(_dstackChain(0)), "getKey[0]: /test/path, test-purpose");
        vm.assertTrue(_verify(_dstackChain(1)), "getKey[1]: test, signing");
        vm.assertTrue(_verify(_dstackChain(2)), "getKey[2]: empty path and purpose");
    }

    function test_VerifySignatureChain_DstackVectorWrongPurpose() public {
        _bootstrapDstackRoot();
        Chain memory c = _dstackChain(0);
        c.purpose = "signing";
        vm.assertFalse(_verify(c), "purpose of another entry");
    }

    function test_VerifySignatureChain_DstackVectorOtherRoot() public {
        _bootstrap(); // MASTER_PK, not the dstack KMS root
        vm.assertFalse(_verify(_dstackChain(0)), "not rooted at xPub");
    }

    // ------------------------------------------------------------ verifySignatureChain: constructed chains

    function test_VerifySignatureChain() public {
        _bootstrap();
        Chain memory c = _chain();
        vm.assertTrue(_verify(c), "chain");
        (,, uint8 appV) = _split(c.appSignature);
        (,, uint8 kmsV) = _split(c.kmsSignature);
        c.appSignature = _withV(c.appSignature, appV - 27);
        c.kmsSignature = _withV(c.kmsSignature, kmsV - 27);
        vm.assertTrue(_verify(c), "v in {0,1}");
    }

    function test_VerifySignatureChain_BothPrefixes() public {
        _bootstrap();
        // Derived and app keys with each y parity, so both decompression branches are exercised.
        for (uint256 pk = 1; pk <= 6; ++pk) {
            Chain memory c = _chain();
            c.derived = _pubkey33(pk);
            c.app = _pubkey33(pk + 100);
            c.appSignature = _sign(pk + 100, _appDigest(c.purpose, c.derived));
            c.kmsSignature = _sign(MASTER_PK, _kmsDigest(c.appId, c.app));
            vm.assertTrue(_verify(c), "chain");
        }
    }

    function test_VerifySignatureChain_FalseBeforeBootstrap() public {
        KeyManager fresh = new KeyManager(owner, 0);
        Chain memory c = _dstackChain(0);
        vm.assertFalse(
            fresh.verifySignatureChain(c.appId, c.derived, c.app, c.appSignature, c.kmsSignature, c.purpose), "dstack"
        );
    }

    function test_VerifySignatureChain_FalseForOtherMessage() public {
        _bootstrap();
        Chain memory c = _chain();
        c.purpose = "other";
        vm.assertFalse(_verify(c), "purpose");
        c = _chain();
        c.appId = bytes20(uint160(c.appId) ^ 1);
        vm.assertFalse(_verify(c), "appId");
        c = _chain();
        c.derived = _pubkey33(OTHER_PK);
        vm.assertFalse(_verify(c), "derived key");
        c = _chain();
        c.app = _pubkey33(OTHER_PK);
        vm.assertFalse(_verify(c), "app key");
    }

    function test_VerifySignatureChain_FalseForUppercaseHex() public {
        _bootstrap();
        Chain memory c = _chain();
        bytes memory hexUpper = bytes(_hexNo0x(c.derived));
        for (uint256 i; i < hexUpper.length; ++i) {
            if (hexUpper[i] >= "a" && hexUpper[i] <= "f") hexUpper[i] = bytes1(uint8(hexUpper[i]) - 32);
        }
        c.appSignature = _sign(APP_PK, keccak256(abi.encodePacked(c.purpose, ":", hexUpper)));
        vm.assertFalse(_verify(c), "the signed message uses lowercase hex");
    }

    function test_VerifySignatureChain_FalseForOtherSigners() public {
        _bootstrap();
        Chain memory c = _chain();
        c.appSignature = _sign(OTHER_PK, _appDigest(c.purpose, c.derived));
        vm.assertFalse(_verify(c), "app link by another key");
        c = _chain();
        c.kmsSignature = _sign(OTHER_PK, _kmsDigest(c.appId, c.app));
        vm.assertFalse(_verify(c), "kms link by another key");
        c = _chain();
        (c.appSignature, c.kmsSignature) = (c.kmsSignature, c.appSignature);
        vm.assertFalse(_verify(c), "links swapped");
    }

    function test_VerifySignatureChain_FalseForMalformedKeys() public {
        _bootstrap();
        Chain memory good = _chain();
        bytes memory app = good.app;
        bytes memory x = new bytes(32);
        for (uint256 i; i < 32; ++i) {
            x[i] = app[i + 1];
        }
        _expectChainFalseWithApp(abi.encodePacked(uint8(4), x), "prefix 04");
        _expectChainFalseWithApp(abi.encodePacked(uint8(0), x), "prefix 00");
        _expectChainFalseWithApp(abi.encodePacked(uint8(1), x), "prefix 01");
        _expectChainFalseWithApp(x, "32 bytes");
        _expectChainFalseWithApp(abi.encodePacked(app, uint8(0)), "34 bytes");
        _expectChainFalseWithApp(_pubkey64(APP_PK), "uncompressed 64 bytes");
        _expectChainFalseWithApp(abi.encodePacked(uint8(4), _pubkey64(APP_PK)), "uncompressed 65 bytes");
        _expectChainFalseWithApp("", "empty");
        _expectChainFalseWithApp(abi.encodePacked(uint8(2), P), "x = p");
        _expectChainFalseWithApp(abi.encodePacked(uint8(2), P + 1), "x = p + 1 (1 + p is an abscissa mod p)");
        _expectChainFalseWithApp(abi.encodePacked(uint8(2), type(uint256).max), "x = 2^256 - 1");
        _expectChainFalseWithApp(abi.encodePacked(uint8(2), uint256(5)), "x = 5 is off the curve");
        _expectChainFalseWithApp(abi.encodePacked(uint8(2), uint256(0)), "x = 0 is off the curve");

        Chain memory c = _chain();
        c.derived = abi.encodePacked(uint8(2), uint256(5));
        c.appSignature = _sign(APP_PK, _appDigest(c.purpose, c.derived));
        vm.assertFalse(_verify(c), "derived key off the curve, though correctly signed");
        c = _chain();
        c.derived = abi.encodePacked(uint8(4), _pubkey64(DERIVED_PK));
        c.appSignature = _sign(APP_PK, _appDigest(c.purpose, c.derived));
        vm.assertFalse(_verify(c), "derived key uncompressed, though correctly signed");
        vm.assertTrue(_verify(_chain()), "the well-formed chain verifies");
    }

    /// @dev The app key replaced (and both links re-signed over it, so only its form is wrong).
    function _expectChainFalseWithApp(bytes memory app, string memory what) internal {
        Chain memory c = _chain();
        c.app = app;
        c.kmsSignature = _sign(MASTER_PK, _kmsDigest(c.appId, app));
        vm.assertFalse(_verify(c), what);
    }

    function test_VerifySignatureChain_FalseForMalformedSignatures() public {
        _bootstrap();
        Chain memory c = _chain();
        bytes memory app = c.appSignature;
        bytes memory kms = c.kmsSignature;
        (bytes32 r, bytes32 s,) = _split(kms);
        bytes[8] memory bad = [
            abi.encodePacked(r, s),
            abi.encodePacked(kms, uint8(0)),
            bytes(""),
            _withV(kms, 2),
            _withV(kms, 29),
            _highS(kms),
            abi.encodePacked(bytes32(0), s, uint8(27)),
            abi.encodePacked(r, bytes32(0), uint8(27))
        ];
        for (uint256 i; i < bad.length; ++i) {
            c.kmsSignature = bad[i];
            vm.assertFalse(_verify(c), "bad kms signature");
        }
        c.kmsSignature = kms;
        (r, s,) = _split(app);
        bad[0] = abi.encodePacked(r, s);
        bad[1] = abi.encodePacked(app, uint8(0));
        bad[3] = _withV(app, 2);
        bad[4] = _withV(app, 29);
        bad[5] = _highS(app);
        bad[6] = abi.encodePacked(bytes32(0), s, uint8(27));
        bad[7] = abi.encodePacked(r, bytes32(0), uint8(27));
        for (uint256 i; i < bad.length; ++i) {
            c.appSignature = bad[i];
            vm.assertFalse(_verify(c), "bad app signature");
        }
        c.appSignature = app;
        vm.assertTrue(_verify(c), "restored");
    }

    function test_VerifySignatureChain_FalseForHighS() public {
        testFuzz_VerifySignatureChain_FalseForHighS("test-purpose");
    }

    function testFuzz_VerifySignatureChain_FalseForHighS(string memory purpose) public {
        _bootstrap();
        Chain memory c = _chain();
        c.purpose = purpose;
        c.appSignature = _sign(APP_PK, _appDigest(purpose, c.derived));
        vm.assertTrue(_verify(c), "canonical");
        Chain memory highApp = _chain();
        highApp.purpose = purpose;
        highApp.appSignature = _highS(c.appSignature);
        vm.assertFalse(_verify(highApp), "high-s app signature");
        c.kmsSignature = _highS(c.kmsSignature);
        vm.assertFalse(_verify(c), "high-s kms signature");
    }

    function test_VerifySignatureChain_FalseForOffCurveAppKey() public {
        testFuzz_VerifySignatureChain_FalseForOffCurveAppKey(5, true);
    }

    function testFuzz_VerifySignatureChain_FalseForOffCurveAppKey(uint256 x, bool odd) public {
        vm.assume(x >= P || !_isAbscissa(x));
        _bootstrap();
        _expectChainFalseWithApp(abi.encodePacked(odd ? uint8(3) : uint8(2), x), "off-curve x");
    }

    function test_VerifySignatureChain_FalseForRandomSignatures() public {
        testFuzz_VerifySignatureChain_FalseForRandomSignatures(
            abi.encodePacked(bytes32(uint256(1)), bytes32(uint256(2)), uint8(27)),
            abi.encodePacked(bytes32(uint256(3)), bytes32(uint256(4)), uint8(28))
        );
    }

    function testFuzz_VerifySignatureChain_FalseForRandomSignatures(bytes memory appSignature, bytes memory kmsSignature)
        public
    {
        _bootstrap();
        Chain memory c = _chain();
        Chain memory randomApp = _chain();
        randomApp.appSignature = appSignature;
        vm.assertFalse(_verify(randomApp), "random app signature");
        c.kmsSignature = kmsSignature;
        vm.assertFalse(_verify(c), "random kms signature");
    }

    function test_VerifySignatureChain_NeverReverts() public {
        testFuzz_VerifySignatureChain_NeverReverts(bytes20(0), hex"02", hex"03", hex"00", hex"1b", "x");
    }

    /// @dev Arbitrary inputs: a revert would fail this test; a true would mean a forged chain.
    function testFuzz_VerifySignatureChain_NeverReverts(
        bytes20 appId,
        bytes memory derived,
        bytes memory app,
        bytes memory appSignature,
        bytes memory kmsSignature,
        string memory purpose
    ) public {
        _bootstrap();
        vm.assertFalse(km.verifySignatureChain(appId, derived, app, appSignature, kmsSignature, purpose), "random");
    }
}
