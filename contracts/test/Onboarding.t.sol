// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {KeyManagerFixture} from "./utils/KeyManagerFixture.sol";
import {Vm} from "./utils/Test.sol";
import {IKeyManager} from "../src/IKeyManager.sol";

/// @notice bootstrap, requestOnboard, fulfillOnboard, confirmOnboard (docs/protocol.md#flows, docs/protocol.md#registry-contract).
contract OnboardingTest is KeyManagerFixture {
    // ------------------------------------------------------------ bootstrap

    function test_Bootstrap() public {
        bytes memory pubkey64 = _pubkey64(MASTER_PK);
        address master = vm.addr(MASTER_PK);
        _setBlob(BOOTSTRAP_BLOB);
        vm.expectEmit(address(km));
        emit IKeyManager.Bootstrapped(master, pubkey64, BOOTSTRAP_BLOB, 1);
        vm.prank(owner);
        km.bootstrap(pubkey64);

        vm.assertEq(km.xPub(), master, "xPub");
        vm.assertEq(km.generation(), 1, "generation");
        vm.assertEq(km.bootstrapQuoteBlobHash(), BOOTSTRAP_BLOB, "quote blob hash");
        vm.assertEq(km.masterPubkey(), _pubkey33(MASTER_PK), "compressed master key");
    }

    function test_Bootstrap_OddY() public {
        // Both compressed prefixes: find keys whose public y has each parity.
        uint256 even;
        uint256 odd;
        for (uint256 pk = 1; even == 0 || odd == 0; ++pk) {
            if (vm.createWallet(pk).publicKeyY & 1 == 0) even = pk;
            else odd = pk;
        }
        _setBlob(BOOTSTRAP_BLOB);
        vm.prank(owner);
        km.bootstrap(_pubkey64(odd));
        vm.assertEq(uint8(km.masterPubkey()[0]), 3, "odd y gives 0x03");
        vm.assertEq(km.masterPubkey(), _pubkey33(odd), "compressed");
    }

    function test_RevertWhen_BootstrapByStranger() public {
        bytes memory pubkey64 = _pubkey64(MASTER_PK);
        _setBlob(BOOTSTRAP_BLOB);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        km.bootstrap(pubkey64);
    }

    // ------------------------------------------------------------ bootstrapper

    function test_SetBootstrapper() public {
        address bootstrapperAccount = address(0xB007);
        vm.assertEq(km.bootstrapper(), address(0), "none by default");
        vm.expectEmit(address(km));
        emit IKeyManager.BootstrapperChanged(address(0), bootstrapperAccount);
        vm.prank(owner);
        km.setBootstrapper(bootstrapperAccount);
        vm.assertEq(km.bootstrapper(), bootstrapperAccount, "named");

        vm.expectEmit(address(km));
        emit IKeyManager.BootstrapperChanged(bootstrapperAccount, address(0));
        vm.prank(owner);
        km.setBootstrapper(address(0));
        vm.assertEq(km.bootstrapper(), address(0), "removed");
    }

    function test_Bootstrap_ByBootstrapper() public {
        testFuzz_Bootstrap_ByBootstrapper(address(0xB007));
    }

    function testFuzz_Bootstrap_ByBootstrapper(address bootstrapperAccount) public {
        vm.assume(bootstrapperAccount != address(0) && bootstrapperAccount != owner);
        vm.prank(owner);
        km.setBootstrapper(bootstrapperAccount);
        bytes memory pubkey64 = _pubkey64(MASTER_PK);
        _setBlob(BOOTSTRAP_BLOB);
        vm.expectEmit(address(km));
        emit IKeyManager.Bootstrapped(vm.addr(MASTER_PK), pubkey64, BOOTSTRAP_BLOB, 1);
        vm.prank(bootstrapperAccount);
        km.bootstrap(pubkey64);
        vm.assertEq(km.xPub(), vm.addr(MASTER_PK), "xPub");
    }

    function test_RevertWhen_BootstrapByReplacedBootstrapper() public {
        address first = address(0xB007);
        address second = address(0xB008);
        vm.prank(owner);
        km.setBootstrapper(first);
        vm.prank(owner);
        km.setBootstrapper(second);
        bytes memory pubkey64 = _pubkey64(MASTER_PK);
        _setBlob(BOOTSTRAP_BLOB);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, first));
        vm.prank(first);
        km.bootstrap(pubkey64);
        vm.prank(owner);
        km.setBootstrapper(address(0));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, second));
        vm.prank(second);
        km.bootstrap(pubkey64);
    }

    function test_RevertWhen_BootstrapperBootstrapsTwice() public {
        vm.prank(owner);
        km.setBootstrapper(stranger);
        _setBlob(BOOTSTRAP_BLOB);
        vm.prank(stranger);
        km.bootstrap(_pubkey64(MASTER_PK));
        bytes memory other = _pubkey64(OTHER_PK);
        vm.expectRevert(IKeyManager.KeyManagerAlreadyBootstrapped.selector);
        vm.prank(stranger);
        km.bootstrap(other);
    }

    function test_RevertWhen_BootstrapperActsAsOwner() public {
        vm.prank(owner);
        km.setBootstrapper(stranger);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        km.setBootstrapper(address(0xB008));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        km.setRequestTtl(10);
    }

    function test_RevertWhen_SetBootstrapperByStranger() public {
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        km.setBootstrapper(stranger);
    }

    function test_RevertWhen_BootstrapWithoutBlob() public {
        bytes memory pubkey64 = _pubkey64(MASTER_PK);
        _clearBlobs();
        vm.expectRevert(IKeyManager.KeyManagerBlobRequired.selector);
        vm.prank(owner);
        km.bootstrap(pubkey64);
    }

    function test_RevertWhen_BootstrapTwice() public {
        _bootstrap();
        bytes memory pubkey64 = _pubkey64(OTHER_PK);
        vm.expectRevert(IKeyManager.KeyManagerAlreadyBootstrapped.selector);
        vm.prank(owner);
        km.bootstrap(pubkey64);
    }

    function test_RevertWhen_BootstrapPubkeyLength() public {
        bytes memory pubkey64 = _pubkey64(MASTER_PK);
        _setBlob(BOOTSTRAP_BLOB);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerInvalidPubkeyLength.selector, 65));
        vm.prank(owner);
        km.bootstrap(abi.encodePacked(uint8(4), pubkey64)); // SEC1 uncompressed form: 0x04 prefix is not accepted
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerInvalidPubkeyLength.selector, 33));
        vm.prank(owner);
        km.bootstrap(_pubkey33(MASTER_PK));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerInvalidPubkeyLength.selector, 0));
        vm.prank(owner);
        km.bootstrap("");
    }

    function test_RevertWhen_BootstrapPubkeyNotOnCurve() public {
        Vm.Wallet memory w = vm.createWallet(MASTER_PK);
        _expectBootstrapOffCurve(abi.encodePacked(w.publicKeyX, w.publicKeyY ^ 1));
        _expectBootstrapOffCurve(abi.encodePacked(uint256(0), uint256(0))); // the point at infinity has no encoding here
        // (1 + p, y) satisfies the equation mod p but is not a canonical coordinate.
        uint256 y1 = _ordinate(1);
        vm.assertTrue(_onCurve(1, y1), "(1, y1) is a point");
        _expectBootstrapOffCurve(abi.encodePacked(1 + P, y1));
    }

    function testFuzz_RevertWhen_BootstrapPubkeyNotOnCurve(uint256 x, uint256 y) public {
        vm.assume(!_onCurve(x, y));
        _expectBootstrapOffCurve(abi.encodePacked(x, y));
    }

    function _expectBootstrapOffCurve(bytes memory pubkey64) internal {
        _setBlob(BOOTSTRAP_BLOB);
        vm.expectRevert(IKeyManager.KeyManagerPubkeyNotOnCurve.selector);
        vm.prank(owner);
        km.bootstrap(pubkey64);
    }

    // ------------------------------------------------------------ requestOnboard

    function test_RequestOnboard() public {
        _bootstrap();
        bytes memory pubkey64 = _pubkey64(NEWCOMER_PK);
        uint64 ref = uint64(block.number - 1);
        bytes32 refHash = blockhash(ref);
        address key = vm.addr(NEWCOMER_PK);
        _setBlob(REQUEST_BLOB);
        vm.expectEmit(address(km));
        emit IKeyManager.OnboardRequested(1, key, pubkey64, REQUEST_BLOB, ref, refHash);
        uint256 id = km.requestOnboard(pubkey64, ref);

        vm.assertEq(id, 1, "first id");
        vm.assertEq(km.requestCount(), 1, "count");
        (address k, uint64 expiresAt, uint8 status, bytes32 commitment) = km.getRequest(id);
        vm.assertEq(k, key, "key");
        vm.assertEq(expiresAt, block.number + 7200, "expiresAt");
        vm.assertEq(status, 1, "pending");
        vm.assertEq(commitment, keccak256(abi.encode(keccak256(pubkey64), REQUEST_BLOB, ref, refHash)), "commitment");
    }

    function test_RequestOnboard_SequentialIds() public {
        _bootstrap();
        vm.assertEq(_request(NEWCOMER_PK), 1, "1");
        vm.assertEq(_request(OTHER_PK), 2, "2");
        vm.assertEq(_request(NEWCOMER_PK), 3, "same key again is a new request");
        vm.assertEq(km.requestCount(), 3, "count");
        (address k,, uint8 s,) = km.getRequest(4);
        vm.assertEq(k, address(0), "no key for unknown id");
        vm.assertEq(s, 0, "status none for unknown id");
    }

    function test_RequestOnboard_RefBlockWindowEdges() public {
        _bootstrap();
        bytes memory pubkey64 = _pubkey64(NEWCOMER_PK);
        _setBlob(REQUEST_BLOB);
        km.requestOnboard(pubkey64, uint64(block.number - 256)); // oldest hash the EVM still serves
        km.requestOnboard(pubkey64, uint64(block.number - 1)); // newest
    }

    function test_RequestOnboard_LowBlockNumber() public {
        _bootstrap();
        vm.roll(1);
        bytes memory pubkey64 = _pubkey64(NEWCOMER_PK);
        _setBlob(REQUEST_BLOB);
        vm.assertEq(km.requestOnboard(pubkey64, 0), 1, "genesis as reference at block 1");
    }

    function test_RequestOnboard_UsesCurrentTtl() public {
        _bootstrap();
        vm.prank(owner);
        km.setRequestTtl(5);
        uint256 id = _request(NEWCOMER_PK);
        (, uint64 expiresAt,,) = km.getRequest(id);
        vm.assertEq(expiresAt, block.number + 5, "expiresAt");
    }

    function test_RevertWhen_RequestOnboardWithoutBlob() public {
        _bootstrap();
        bytes memory pubkey64 = _pubkey64(NEWCOMER_PK);
        _clearBlobs();
        vm.expectRevert(IKeyManager.KeyManagerBlobRequired.selector);
        km.requestOnboard(pubkey64, uint64(block.number - 1));
    }

    function test_RevertWhen_RequestOnboardBeforeBootstrap() public {
        bytes memory pubkey64 = _pubkey64(NEWCOMER_PK);
        _setBlob(REQUEST_BLOB);
        vm.expectRevert(IKeyManager.KeyManagerNotBootstrapped.selector);
        km.requestOnboard(pubkey64, uint64(block.number - 1));
    }

    function test_RevertWhen_RequestOnboardPubkeyLength() public {
        _bootstrap();
        bytes memory pubkey64 = _pubkey64(NEWCOMER_PK);
        _setBlob(REQUEST_BLOB);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerInvalidPubkeyLength.selector, 65));
        km.requestOnboard(abi.encodePacked(pubkey64, uint8(0)), uint64(block.number - 1));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerInvalidPubkeyLength.selector, 63));
        km.requestOnboard(_slice(pubkey64, 1), uint64(block.number - 1));
    }

    function test_RevertWhen_RequestOnboardPubkeyNotOnCurve() public {
        Vm.Wallet memory w = vm.createWallet(NEWCOMER_PK);
        testFuzz_RevertWhen_RequestOnboardPubkeyNotOnCurve(w.publicKeyX, w.publicKeyY + 1);
    }

    function testFuzz_RevertWhen_RequestOnboardPubkeyNotOnCurve(uint256 x, uint256 y) public {
        vm.assume(!_onCurve(x, y));
        _bootstrap();
        _setBlob(REQUEST_BLOB);
        vm.expectRevert(IKeyManager.KeyManagerPubkeyNotOnCurve.selector);
        km.requestOnboard(abi.encodePacked(x, y), uint64(block.number - 1));
    }

    function test_RevertWhen_RequestOnboardRefBlockIsCurrent() public {
        _expectBadRefBlock(uint64(block.number));
    }

    function test_RevertWhen_RequestOnboardRefBlockInFuture() public {
        _expectBadRefBlock(uint64(block.number + 1));
        _expectBadRefBlock(type(uint64).max);
    }

    function test_RevertWhen_RequestOnboardRefBlockTooOld() public {
        _expectBadRefBlock(uint64(block.number - 257));
        _expectBadRefBlock(0);
    }

    function test_RevertWhen_RequestOnboardRefBlockAtLowBlockNumbers() public {
        vm.roll(1);
        _expectBadRefBlock(1);
        vm.roll(0);
        _expectBadRefBlock(0);
    }

    function _expectBadRefBlock(uint64 ref) internal {
        if (km.generation() == 0) _bootstrap();
        bytes memory pubkey64 = _pubkey64(NEWCOMER_PK);
        _setBlob(REQUEST_BLOB);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerInvalidRefBlock.selector, ref, block.number));
        km.requestOnboard(pubkey64, ref);
    }

    function test_RevertWhen_RequestOnboardRefBlockHashUnavailable() public {
        _bootstrap();
        bytes memory pubkey64 = _pubkey64(NEWCOMER_PK);
        uint64 ref = uint64(block.number - 2);
        vm.setBlockhash(ref, bytes32(0));
        _setBlob(REQUEST_BLOB);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerRefBlockHashUnavailable.selector, ref));
        km.requestOnboard(pubkey64, ref);
    }

    function _slice(bytes memory data, uint256 drop) internal pure returns (bytes memory out) {
        out = new bytes(data.length - drop);
        for (uint256 i; i < out.length; ++i) {
            out[i] = data[i];
        }
    }

    // ------------------------------------------------------------ fulfillOnboard

    function test_FulfillOnboard() public {
        _bootstrap();
        uint256 a = _request(NEWCOMER_PK);
        uint256 b = _request(OTHER_PK);
        uint256[] memory ids = _ids(b, a); // envelope order is the caller's choice
        _setBlob(RESPONSE_BLOB);
        bytes memory signature = _sign(MASTER_PK, _responseDigest(ids, RESPONSE_BLOB, 1));
        vm.expectEmit(address(km));
        emit IKeyManager.Onboarded(b, RESPONSE_BLOB, 0);
        vm.expectEmit(address(km));
        emit IKeyManager.Onboarded(a, RESPONSE_BLOB, 1);
        km.fulfillOnboard(ids, signature);
        vm.assertEq(_status(a), 2, "a fulfilled");
        vm.assertEq(_status(b), 2, "b fulfilled");
    }

    function test_FulfillOnboard_AcceptsEveryV() public {
        _bootstrap();
        for (uint8 v = 0; v < 2; ++v) {
            uint256 id = _request(NEWCOMER_PK);
            uint256[] memory ids = _ids(id);
            _setBlob(RESPONSE_BLOB);
            bytes memory signature = _sign(MASTER_PK, _responseDigest(ids, RESPONSE_BLOB, 1));
            (,, uint8 v27) = _split(signature);
            km.fulfillOnboard(ids, _withV(signature, v27 - 27)); // the {0,1} form that noble and dstack produce
            vm.assertEq(_status(id), 2, "fulfilled");
        }
    }

    function test_FulfillOnboard_LastBlockBeforeExpiry() public {
        _bootstrap();
        uint256 id = _request(NEWCOMER_PK);
        (, uint64 expiresAt,,) = km.getRequest(id);
        vm.roll(expiresAt);
        _fulfill(_ids(id));
        vm.assertEq(_status(id), 2, "fulfilled");
    }

    function test_RevertWhen_FulfillOnboardWithoutBlob() public {
        _bootstrap();
        uint256[] memory ids = _ids(_request(NEWCOMER_PK));
        bytes memory signature = _sign(MASTER_PK, _responseDigest(ids, bytes32(0), 1));
        _clearBlobs();
        vm.expectRevert(IKeyManager.KeyManagerBlobRequired.selector);
        km.fulfillOnboard(ids, signature);
    }

    function test_RevertWhen_FulfillOnboardEmptyBatch() public {
        _bootstrap();
        uint256[] memory ids = new uint256[](0);
        bytes memory signature = _sign(MASTER_PK, _responseDigest(ids, RESPONSE_BLOB, 1));
        _setBlob(RESPONSE_BLOB);
        vm.expectRevert(IKeyManager.KeyManagerEmptyBatch.selector);
        km.fulfillOnboard(ids, signature);
    }

    function test_RevertWhen_FulfillOnboardBeforeBootstrap() public {
        uint256[] memory ids = _ids(1);
        bytes memory signature = _sign(MASTER_PK, _responseDigest(ids, RESPONSE_BLOB, 0));
        _setBlob(RESPONSE_BLOB);
        vm.expectRevert(IKeyManager.KeyManagerNotBootstrapped.selector);
        km.fulfillOnboard(ids, signature);
    }

    function test_RevertWhen_FulfillOnboardUnknownRequest() public {
        _bootstrap();
        uint256 id = _request(NEWCOMER_PK);
        _expectFulfillRevert(_ids(id, 2), abi.encodeWithSelector(IKeyManager.KeyManagerUnknownRequest.selector, 2));
        _expectFulfillRevert(_ids(0), abi.encodeWithSelector(IKeyManager.KeyManagerUnknownRequest.selector, 0));
        vm.assertEq(_status(id), 1, "the whole batch reverted");
    }

    function test_RevertWhen_FulfillOnboardExpired() public {
        _bootstrap();
        uint256 id = _request(NEWCOMER_PK);
        (, uint64 expiresAt,,) = km.getRequest(id);
        vm.roll(uint256(expiresAt) + 1);
        _expectFulfillRevert(
            _ids(id), abi.encodeWithSelector(IKeyManager.KeyManagerRequestExpired.selector, id, expiresAt)
        );
    }

    function test_RevertWhen_FulfillOnboardAlreadyFulfilled() public {
        _bootstrap();
        uint256 id = _request(NEWCOMER_PK);
        _fulfill(_ids(id));
        _expectFulfillRevert(_ids(id), abi.encodeWithSelector(IKeyManager.KeyManagerRequestAlreadyFulfilled.selector, id));
        _confirm(id, NEWCOMER_PK);
        _expectFulfillRevert(_ids(id), abi.encodeWithSelector(IKeyManager.KeyManagerRequestAlreadyFulfilled.selector, id));
    }

    function test_RevertWhen_FulfillOnboardDuplicateInBatch() public {
        _bootstrap();
        uint256 id = _request(NEWCOMER_PK);
        _expectFulfillRevert(_ids(id, id), abi.encodeWithSelector(IKeyManager.KeyManagerRequestAlreadyFulfilled.selector, id));
        vm.assertEq(_status(id), 1, "still pending");
    }

    function _expectFulfillRevert(uint256[] memory ids, bytes memory revertData) internal {
        _setBlob(RESPONSE_BLOB);
        bytes memory signature = _sign(MASTER_PK, _responseDigest(ids, RESPONSE_BLOB, 1));
        vm.expectRevert(revertData);
        km.fulfillOnboard(ids, signature);
    }

    function test_RevertWhen_FulfillOnboardSignatureInvalid() public {
        _bootstrap();
        uint256[] memory ids = _ids(_request(NEWCOMER_PK));
        bytes memory good = _sign(MASTER_PK, _responseDigest(ids, RESPONSE_BLOB, 1));
        _expectBadFulfillSignature(ids, _sign(OTHER_PK, _responseDigest(ids, RESPONSE_BLOB, 1))); // other signer
        _expectBadFulfillSignature(ids, _sign(MASTER_PK, _responseDigest(ids, REQUEST_BLOB, 1))); // other blob
        _expectBadFulfillSignature(ids, _sign(MASTER_PK, _responseDigest(ids, RESPONSE_BLOB, 2))); // other generation
        _expectBadFulfillSignature(ids, _sign(MASTER_PK, _responseDigest(_ids(ids[0], 9), RESPONSE_BLOB, 1))); // other ids
        _expectBadFulfillSignature(ids, _highS(good));
        _expectBadFulfillSignature(ids, _withV(good, 29));
        _expectBadFulfillSignature(ids, abi.encodePacked(good, uint8(0))); // 66 bytes
        _expectBadFulfillSignature(ids, _slice(good, 1)); // 64 bytes
        _expectBadFulfillSignature(ids, "");
        bytes32 responseStruct = _responseStruct(ids, RESPONSE_BLOB, 1);
        _expectBadFulfillSignature(ids, _sign(MASTER_PK, _typedFor(stranger, block.chainid, responseStruct))); // other registry
        _expectBadFulfillSignature(ids, _sign(MASTER_PK, _typedFor(address(km), 1, responseStruct))); // other chain
        _setBlob(RESPONSE_BLOB);
        km.fulfillOnboard(ids, good);
    }

    function testFuzz_RevertWhen_FulfillOnboardRandomSignature(bytes32 r, bytes32 s, uint8 v) public {
        _bootstrap();
        uint256[] memory ids = _ids(_request(NEWCOMER_PK));
        _expectBadFulfillSignature(ids, abi.encodePacked(r, s, v));
    }

    function test_RevertWhen_FulfillOnboardRandomSignature() public {
        testFuzz_RevertWhen_FulfillOnboardRandomSignature(bytes32(uint256(1)), bytes32(uint256(2)), 27);
    }

    function _expectBadFulfillSignature(uint256[] memory ids, bytes memory signature) internal {
        _setBlob(RESPONSE_BLOB);
        vm.expectRevert(IKeyManager.KeyManagerInvalidSignature.selector);
        km.fulfillOnboard(ids, signature);
    }

    // ------------------------------------------------------------ confirmOnboard

    function test_ConfirmOnboard() public {
        _bootstrap();
        uint256 id = _request(NEWCOMER_PK);
        _fulfill(_ids(id));
        _clearBlobs(); // no blob needed
        bytes memory signature = _sign(NEWCOMER_PK, _receiptDigest(id, vm.addr(MASTER_PK)));
        vm.expectEmit(address(km));
        emit IKeyManager.OnboardConfirmed(id);
        vm.prank(stranger); // anyone may relay the receipt
        km.confirmOnboard(id, signature);
        vm.assertEq(_status(id), 3, "confirmed");
    }

    function test_RevertWhen_ConfirmOnboardUnknownRequest() public {
        _bootstrap();
        bytes memory signature = _sign(NEWCOMER_PK, _receiptDigest(1, vm.addr(MASTER_PK)));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnknownRequest.selector, 1));
        km.confirmOnboard(1, signature);
    }

    function test_RevertWhen_ConfirmOnboardNotFulfilled() public {
        _bootstrap();
        uint256 id = _request(NEWCOMER_PK);
        bytes memory signature = _sign(NEWCOMER_PK, _receiptDigest(id, vm.addr(MASTER_PK)));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerRequestNotFulfilled.selector, id));
        km.confirmOnboard(id, signature);
    }

    function test_RevertWhen_ConfirmOnboardTwice() public {
        _bootstrap();
        uint256 id = _request(NEWCOMER_PK);
        _fulfill(_ids(id));
        _confirm(id, NEWCOMER_PK);
        bytes memory signature = _sign(NEWCOMER_PK, _receiptDigest(id, vm.addr(MASTER_PK)));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerRequestAlreadyConfirmed.selector, id));
        km.confirmOnboard(id, signature);
    }

    function test_RevertWhen_ConfirmOnboardSignatureInvalid() public {
        _bootstrap();
        uint256 id = _request(NEWCOMER_PK);
        uint256 other = _request(OTHER_PK);
        _fulfill(_ids(id, other));
        address master = vm.addr(MASTER_PK);
        bytes memory good = _sign(NEWCOMER_PK, _receiptDigest(id, master));
        _expectBadConfirmSignature(id, _sign(OTHER_PK, _receiptDigest(id, master))); // another request's key
        _expectBadConfirmSignature(id, _sign(MASTER_PK, _receiptDigest(id, master))); // the master key
        _expectBadConfirmSignature(id, _sign(NEWCOMER_PK, _receiptDigest(other, master))); // other request id
        _expectBadConfirmSignature(id, _sign(NEWCOMER_PK, _receiptDigest(id, stranger))); // other xPub
        _expectBadConfirmSignature(id, _highS(good));
        _expectBadConfirmSignature(id, _slice(good, 1));
        km.confirmOnboard(id, good);
    }

    function _expectBadConfirmSignature(uint256 id, bytes memory signature) internal {
        vm.expectRevert(IKeyManager.KeyManagerInvalidSignature.selector);
        km.confirmOnboard(id, signature);
    }
}
