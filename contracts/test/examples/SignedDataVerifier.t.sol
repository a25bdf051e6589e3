// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {KeyManagerFixture} from "../utils/KeyManagerFixture.sol";
import {IKeyManager} from "../../src/IKeyManager.sol";
import {SignedDataVerifier} from "../../examples/SignedDataVerifier.sol";

/// @notice The example verifier accepts a dstack `Sign` answer (64-byte r ‖ s over SHA-256(data) or a given digest)
/// only with the signing key's chain for purpose "signing", the pinned app and the registry's root; signatures and
/// chains are built with vm.sign, independently of the contracts (docs/protocol.md#dstack-api).
contract SignedDataVerifierTest is KeyManagerFixture {
    uint256 internal constant APP_PK = 0xA99;
    uint256 internal constant SIGN_PK = 0x516;
    bytes20 internal constant APP_ID = bytes20(hex"00112233445566778899aabbccddeeff00112233");

    SignedDataVerifier internal verifier;


    function setUp() public override {
        super.setUp();
        _bootstrap();
        _clearBlobs();
        verifier = new SignedDataVerifier(km, APP_ID);
    }

    function _chain(uint256 keyPk, string memory purpose, bytes20 appId, uint256 rootPk)
        internal
        returns (SignedDataVerifier.KeyChain memory c)
    {
        c.publicKey64 = _pubkey64(SIGN_PK);
        c.appPubkey33 = _pubkey33(APP_PK);
        c.appSignature = _sign(APP_PK, keccak256(abi.encodePacked(purpose, ":", _hexNo0x(_pubkey33(keyPk)))));
        c.kmsSignature = _sign(rootPk, keccak256(abi.encodePacked("dstack-kms-issued:", appId, c.appPubkey33)));
    }

    /// @dev What Sign answers as `signature`: r ‖ s, no recovery byte.
    function _sign64(uint256 pk, bytes32 digest) internal returns (bytes memory) {
        (, bytes32 r, bytes32 s) = vm.sign(pk, digest);
        return abi.encodePacked(r, s);
    }

    function _verify(bytes memory data, bool prehashed, bytes memory signature, SignedDataVerifier.KeyChain memory c)
        internal
        view
        returns (bool)
    {
        return verifier.verify(data, prehashed, signature, c);
    }

    function _good() internal returns (SignedDataVerifier.KeyChain memory) {
        return _chain(SIGN_PK, "signing", APP_ID, MASTER_PK);
    }

    function test_Constructor() public view {
        vm.assertEq(address(verifier.registry()), address(km), "registry");
        vm.assertEq(bytes32(verifier.appId()), bytes32(APP_ID), "appId");
        vm.assertEq(keccak256(bytes(verifier.PURPOSE())), keccak256("signing"), "purpose");
    }

    function test_RevertWhen_ConstructorZeroArguments() public {
        vm.expectRevert(SignedDataVerifier.SignedDataVerifierZeroArgument.selector);
        new SignedDataVerifier(IKeyManager(address(0)), APP_ID);
        vm.expectRevert(SignedDataVerifier.SignedDataVerifierZeroArgument.selector);
        new SignedDataVerifier(km, bytes20(0));
    }

    function test_VerifySecp256k1() public {
        SignedDataVerifier.KeyChain memory c = _good();
        bytes memory data = "price=3000";
        vm.assertTrue(_verify(data, false, _sign64(SIGN_PK, sha256(data)), c), "secp256k1 over sha256(data)");
    }

    function test_VerifyPrehashed() public {
        SignedDataVerifier.KeyChain memory c = _good();
        bytes32 digest = keccak256("any digest the app chose");
        vm.assertTrue(_verify(abi.encodePacked(digest), true, _sign64(SIGN_PK, digest), c), "prehashed");
    }

    function testFuzz_VerifySecp256k1(bytes memory data) public {
        SignedDataVerifier.KeyChain memory c = _good();
        vm.assertTrue(_verify(data, false, _sign64(SIGN_PK, sha256(data)), c), "any data");
    }

    function test_RejectOtherDataOrKey() public {
        SignedDataVerifier.KeyChain memory c = _good();
        bytes memory data = "price=3000";
        bytes memory signature = _sign64(SIGN_PK, sha256(data));
        vm.assertFalse(_verify("price=3001", false, signature, c), "other data");
        vm.assertFalse(_verify(data, true, signature, c), "not prehashed");
        vm.assertFalse(_verify(data, false, _sign64(OTHER_PK, sha256(data)), c), "signed by another key");
    }

    function test_RejectChainForAnotherPurposeAppOrRoot() public {
        bytes memory data = "price=3000";
        bytes memory signature = _sign64(SIGN_PK, sha256(data));
        vm.assertFalse(_verify(data, false, signature, _chain(SIGN_PK, "price-oracle", APP_ID, MASTER_PK)), "purpose");
        vm.assertFalse(_verify(data, false, signature, _chain(SIGN_PK, "signing", bytes20(uint160(1)), MASTER_PK)), "app");
        vm.assertFalse(_verify(data, false, signature, _chain(SIGN_PK, "signing", APP_ID, OTHER_PK)), "root");
        SignedDataVerifier.KeyChain memory other = _chain(OTHER_PK, "signing", APP_ID, MASTER_PK);
        vm.assertFalse(_verify(data, false, signature, other), "chain of another key");
    }

    function test_RejectMalformed() public {
        SignedDataVerifier.KeyChain memory c = _good();
        bytes memory data = "price=3000";
        bytes memory signature = _sign64(SIGN_PK, sha256(data));
        (bytes32 r, bytes32 s) = abi.decode(signature, (bytes32, bytes32));
        vm.assertFalse(_verify(data, false, abi.encodePacked(r, bytes32(N - uint256(s))), c), "high s");
        vm.assertFalse(_verify(data, false, abi.encodePacked(bytes32(0), s), c), "zero r");
        vm.assertFalse(_verify(data, false, abi.encodePacked(signature, uint8(27)), c), "65 bytes");
        vm.assertFalse(_verify(hex"0011", true, signature, c), "prehashed digest not 32 bytes");
        c.publicKey64 = hex"00";
        vm.assertFalse(_verify(data, false, signature, c), "short key");
    }
}
