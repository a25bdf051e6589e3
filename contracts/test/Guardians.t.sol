// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {KeyManagerFixture} from "./utils/KeyManagerFixture.sol";
import {KeyManager} from "../src/KeyManager.sol";
import {IKeyManager} from "../src/IKeyManager.sol";

/// @notice Guardian sets (delayed like measurement additions), escrow of a generation's master secret, recovery
/// (docs/protocol.md#guardians, docs/protocol.md#recovery).
contract GuardiansTest is KeyManagerFixture {
    uint64 internal constant DELAY = 2 days;
    uint256 internal constant GUARDIAN_PK = 0x6000; // guardians 0x6001..0x6005
    uint256 internal constant ENCLAVE_PK = 0xE1C1A7E;
    uint256 internal constant NEXT_MASTER_PK = 0xC0FFEE;

    function setUp() public override {
        super.setUp();
        km = new KeyManager(owner, DELAY);
        _bootstrap();
    }

    function _guardianKeys(uint256 first, uint256 count) internal returns (bytes memory keys) {
        for (uint256 i; i < count; ++i) {
            keys = abi.encodePacked(keys, _pubkey64(first + i));
        }
    }

    /// @dev Guardians GUARDIAN_PK + 1 .. + 5, 3 of 5, active after the delay.
    function _activeGuardians() internal returns (uint64 set) {
        vm.prank(owner);
        set = km.setGuardians(_guardianKeys(GUARDIAN_PK + 1, 5), 3);
        vm.warp(block.timestamp + DELAY);
    }

    /// @dev Commitments C_0 = M·G (the master key), C_1, C_2 for made-up coefficients: the contract checks C_0 only.
    function _commitments(uint256 masterPk) internal returns (bytes memory) {
        return abi.encodePacked(_pubkey33(masterPk), _pubkey33(0xC1), _pubkey33(0xC2));
    }

    function _shares(uint256 count) internal pure returns (bytes[] memory shares) {
        shares = new bytes[](count);
        for (uint256 i; i < count; ++i) {
            shares[i] = abi.encodePacked("encrypted share ", uint8(i + 1));
        }
    }

    function _escrow(uint64 gen, uint64 set, uint256 masterPk) internal {
        bytes memory commitments = _commitments(masterPk);
        bytes[] memory shares = _shares(5);
        km.publishEscrow(gen, set, commitments, shares, _sign(masterPk, _typed(_escrowStruct(gen, set, commitments, shares))));
    }

    // ------------------------------------------------------------ guardian sets

    function test_SetGuardians_WaitsForDelay() public {
        bytes memory keys = _guardianKeys(GUARDIAN_PK + 1, 5);
        uint64 activatesAt = uint64(block.timestamp + DELAY);
        vm.expectEmit(address(km));
        emit IKeyManager.GuardiansProposed(1, 3, activatesAt, keys);
        vm.prank(owner);
        vm.assertEq(km.setGuardians(keys, 3), 1, "set id");
        vm.assertEq(km.activeGuardianSet(), 0, "not active before its delay");
        vm.assertEq(km.pendingGuardianSet(), 1, "pending");
        (bytes32 hash, uint8 threshold, uint8 count, uint64 activation) = km.guardianSetInfo(1);
        vm.assertEq(hash, keccak256(keys), "keys hash");
        vm.assertEq(threshold, 3, "k");
        vm.assertEq(count, 5, "n");
        vm.assertEq(activation, activatesAt, "activatesAt");
        vm.assertEq(km.guardianIndex(1, vm.addr(GUARDIAN_PK + 1)), 1, "first guardian");
        vm.assertEq(km.guardianIndex(1, vm.addr(GUARDIAN_PK + 5)), 5, "fifth guardian");
        vm.assertEq(km.guardianIndex(1, stranger), 0, "not a guardian");

        // An escrow to the pending set is refused until it is active.
        bytes memory commitments = _commitments(MASTER_PK);
        bytes[] memory shares = _shares(5);
        bytes memory signature = _sign(MASTER_PK, _typed(_escrowStruct(1, 1, commitments, shares)));
        vm.warp(activatesAt - 1);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerGuardianSetNotActive.selector, 1));
        km.publishEscrow(1, 1, commitments, shares, signature);
        vm.warp(activatesAt);
        vm.assertEq(km.activeGuardianSet(), 1, "active at its time");
        vm.assertEq(km.pendingGuardianSet(), 0, "no longer pending");
        km.publishEscrow(1, 1, commitments, shares, signature);
    }

    function test_SetGuardians_ChangeWaitsWhileTheOldSetStaysActive() public {
        uint64 first = _activeGuardians();
        vm.prank(owner);
        uint64 second = km.setGuardians(_guardianKeys(GUARDIAN_PK + 10, 3), 2);
        vm.assertEq(km.activeGuardianSet(), first, "the old set stays active during the delay");
        vm.assertEq(km.pendingGuardianSet(), second, "the new one waits");
        vm.warp(block.timestamp + DELAY - 1);
        vm.prank(owner);
        uint64 third = km.setGuardians(_guardianKeys(GUARDIAN_PK + 20, 2), 2); // replaces the pending one
        vm.warp(block.timestamp + 1);
        vm.assertEq(km.activeGuardianSet(), first, "the replaced set never activates");
        vm.warp(block.timestamp + DELAY);
        vm.assertEq(km.activeGuardianSet(), third, "the replacement activates after its own delay");
        vm.assertTrue(second != third, "distinct ids");
    }

    function test_SetGuardians_NoGuardians() public {
        _activeGuardians();
        vm.prank(owner);
        uint64 none = km.setGuardians("", 0);
        vm.warp(block.timestamp + DELAY);
        vm.assertEq(km.activeGuardianSet(), none, "an empty set is active");
        bytes[] memory shares = new bytes[](0);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerGuardianSetNotActive.selector, none));
        km.publishEscrow(1, none, "", shares, "");
    }

    function test_RevertWhen_SetGuardiansInvalid() public {
        bytes memory three = _guardianKeys(GUARDIAN_PK + 1, 3);
        _expectInvalidGuardians(three, 0);
        _expectInvalidGuardians(three, 1); // one guardian alone would hold the secret
        _expectInvalidGuardians(_guardianKeys(GUARDIAN_PK + 1, 1), 1);
        _expectInvalidGuardians(three, 4);
        _expectInvalidGuardians(abi.encodePacked(three, uint8(1)), 2);
        _expectInvalidGuardians("", 1);
        _expectInvalidGuardians(new bytes(33 * 64), 1);
        vm.expectRevert(IKeyManager.KeyManagerPubkeyNotOnCurve.selector);
        vm.prank(owner);
        km.setGuardians(abi.encodePacked(three, uint256(1), uint256(1)), 2);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerDuplicateGuardian.selector, vm.addr(GUARDIAN_PK + 1)));
        vm.prank(owner);
        km.setGuardians(abi.encodePacked(three, _pubkey64(GUARDIAN_PK + 1)), 2);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        km.setGuardians(three, 2);
    }

    function testFuzz_RevertWhen_SetGuardiansThresholdOutOfRange(uint8 count, uint8 threshold) public {
        count = uint8(count % 6 + 1);
        vm.assume(threshold < 2 || threshold > count);
        _expectInvalidGuardians(_guardianKeys(GUARDIAN_PK + 1, count), threshold);
    }

    function test_RevertWhen_SetGuardiansThresholdOutOfRange() public {
        testFuzz_RevertWhen_SetGuardiansThresholdOutOfRange(4, 6);
    }

    function _expectInvalidGuardians(bytes memory keys, uint8 threshold) internal {
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerInvalidGuardians.selector, keys.length, threshold));
        vm.prank(owner);
        km.setGuardians(keys, threshold);
    }

    function test_SetGuardians_Maximum() public {
        vm.prank(owner);
        uint64 set = km.setGuardians(_guardianKeys(GUARDIAN_PK + 1, 32), 32);
        vm.assertEq(km.guardianIndex(set, vm.addr(GUARDIAN_PK + 32)), 32, "32nd");
    }

    // ------------------------------------------------------------ escrow

    function test_PublishEscrow() public {
        uint64 set = _activeGuardians();
        bytes memory commitments = _commitments(MASTER_PK);
        bytes[] memory shares = _shares(5);
        bytes32 structHash = _escrowStruct(1, set, commitments, shares);
        vm.expectEmit(address(km));
        emit IKeyManager.EscrowPublished(1, set, commitments, shares);
        vm.prank(stranger); // anyone relays; the master key signs
        km.publishEscrow(1, set, commitments, shares, _sign(MASTER_PK, _typed(structHash)));
        IKeyManager.GenerationInfo memory info = km.generationInfo(1);
        vm.assertEq(info.escrowGuardianSet, set, "escrow set");
        vm.assertEq(info.escrowHash, structHash, "escrow hash");
    }

    function test_RevertWhen_PublishEscrowMismatch() public {
        uint64 set = _activeGuardians();
        bytes memory commitments = _commitments(MASTER_PK);
        bytes[] memory shares = _shares(5);
        // The constant term must be this generation's master key.
        _expectEscrowRevert(set, _commitments(OTHER_PK), shares, MASTER_PK, abi.encodeWithSelector(IKeyManager.KeyManagerEscrowMismatch.selector));
        bytes memory oddPrefix = abi.encodePacked(commitments);
        oddPrefix[0] = oddPrefix[0] == bytes1(0x02) ? bytes1(0x03) : bytes1(0x02);
        _expectEscrowRevert(set, oddPrefix, shares, MASTER_PK, abi.encodeWithSelector(IKeyManager.KeyManagerEscrowMismatch.selector));
        // k commitments and n shares.
        _expectEscrowRevert(set, abi.encodePacked(_pubkey33(MASTER_PK), _pubkey33(0xC1)), shares, MASTER_PK, abi.encodeWithSelector(IKeyManager.KeyManagerEscrowMismatch.selector));
        _expectEscrowRevert(set, commitments, _shares(4), MASTER_PK, abi.encodeWithSelector(IKeyManager.KeyManagerEscrowMismatch.selector));
        // Signed by the master key, nothing else.
        _expectEscrowRevert(set, commitments, shares, OTHER_PK, abi.encodeWithSelector(IKeyManager.KeyManagerInvalidSignature.selector));
        _expectEscrowRevert(set, commitments, shares, GUARDIAN_PK + 1, abi.encodeWithSelector(IKeyManager.KeyManagerInvalidSignature.selector));
        // Only the active set.
        _expectEscrowRevert(set + 1, commitments, shares, MASTER_PK, abi.encodeWithSelector(IKeyManager.KeyManagerGuardianSetNotActive.selector, set + 1));
    }

    function _expectEscrowRevert(
        uint64 set,
        bytes memory commitments,
        bytes[] memory shares,
        uint256 signerPk,
        bytes memory revertData
    ) internal {
        bytes memory signature = _sign(signerPk, _typed(_escrowStruct(1, set, commitments, shares)));
        vm.expectRevert(revertData);
        km.publishEscrow(1, set, commitments, shares, signature);
    }

    function test_RevertWhen_PublishEscrowTwiceToTheSameSet() public {
        uint64 set = _activeGuardians();
        _escrow(1, set, MASTER_PK);
        bytes32 first = km.generationInfo(1).escrowHash;
        // Another node's escrow of the same generation to the same set (another polynomial): refused, the first stays.
        bytes memory commitments = abi.encodePacked(_pubkey33(MASTER_PK), _pubkey33(0xC2), _pubkey33(0xC3));
        bytes[] memory shares = _shares(5);
        bytes memory signature = _sign(MASTER_PK, _typed(_escrowStruct(1, set, commitments, shares)));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerAlreadyEscrowed.selector, 1, set));
        km.publishEscrow(1, set, commitments, shares, signature);
        vm.assertEq(km.generationInfo(1).escrowHash, first, "the first escrow stays");
        // A new active set takes a new escrow.
        vm.prank(owner);
        uint64 next = km.setGuardians(_guardianKeys(GUARDIAN_PK + 10, 5), 3);
        vm.warp(block.timestamp + DELAY);
        _escrow(1, next, MASTER_PK);
        vm.assertEq(km.generationInfo(1).escrowGuardianSet, next, "escrowed to the new set");
    }

    function test_RevertWhen_PublishEscrowForUnusableGeneration() public {
        uint64 set = _activeGuardians();
        bytes memory commitments = _commitments(MASTER_PK);
        bytes[] memory shares = _shares(5);
        bytes memory signature = _sign(MASTER_PK, _typed(_escrowStruct(2, set, commitments, shares)));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnknownGeneration.selector, 2));
        km.publishEscrow(2, set, commitments, shares, signature);
        signature = _sign(MASTER_PK, _typed(_escrowStruct(1, set, commitments, shares)));
        vm.prank(owner);
        km.revokeGeneration(1);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerGenerationRevoked.selector, 1));
        km.publishEscrow(1, set, commitments, shares, signature);
    }

    function test_PublishEscrow_OlderGenerationAfterRotation() public {
        uint64 set = _activeGuardians();
        uint256 member = _join(NEWCOMER_PK, MASTER_PK);
        vm.prank(owner);
        km.startRotation(false, 30 days, 0);
        uint64 id = _propose(NEWCOMER_PK, member, NEXT_MASTER_PK, _ids(member));
        km.commitGeneration(id);
        _escrow(1, set, MASTER_PK); // generation 1 still served for migration: escrowed with its own key
        _escrow(2, set, NEXT_MASTER_PK);
        vm.assertEq(km.generationInfo(1).escrowGuardianSet, set, "gen 1");
        vm.assertEq(km.generationInfo(2).escrowGuardianSet, set, "gen 2");
        vm.warp(block.timestamp + 30 days);
        vm.prank(owner);
        km.purgeGeneration(1);
        bytes memory commitments = _commitments(MASTER_PK);
        bytes[] memory shares = _shares(5);
        bytes memory signature = _sign(MASTER_PK, _typed(_escrowStruct(1, set, commitments, shares)));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerGenerationPurged.selector, 1));
        km.publishEscrow(1, set, commitments, shares, signature);
    }

    // ------------------------------------------------------------ recovery

    function _release(uint256 requestId, uint64 gen, uint256 guardianPk) internal {
        bytes memory share = abi.encodePacked("to the enclave from ", vm.addr(guardianPk));
        km.releaseShare(requestId, gen, share, _sign(guardianPk, _releaseDigest(requestId, gen, share)));
    }

    function test_Recovery() public {
        uint64 set = _activeGuardians();
        _escrow(1, set, MASTER_PK);
        // Every node is lost. A fresh enclave registers; the owner names its request for recovery.
        uint256 enclave = _request(ENCLAVE_PK);
        vm.expectEmit(address(km));
        emit IKeyManager.RecoveryStarted(enclave);
        vm.prank(owner);
        km.startRecovery(enclave);
        vm.assertEq(km.recoveryRequest(), enclave, "open recovery");

        bytes memory share = "share 2 encrypted to the enclave";
        bytes memory signature = _sign(GUARDIAN_PK + 2, _releaseDigest(enclave, 1, share));
        vm.expectEmit(address(km));
        emit IKeyManager.ShareReleased(enclave, 1, 2, vm.addr(GUARDIAN_PK + 2), share);
        vm.prank(stranger);
        km.releaseShare(enclave, 1, share, signature);
        _release(enclave, 1, GUARDIAN_PK + 4);
        vm.assertEq(km.releasedShares(enclave, 1), (1 << 2) | (1 << 4), "two shares: still pending");
        vm.assertEq(_status(enclave), 1, "pending");
        _release(enclave, 1, GUARDIAN_PK + 5);
        vm.assertEq(km.releasedShares(enclave, 1), (1 << 2) | (1 << 4) | (1 << 5), "three shares");

        // The enclave reassembles M inside itself, checks it against the master key, seals it, and confirms.
        bytes memory receipt = _sign(ENCLAVE_PK, _receiptDigest(enclave, vm.addr(MASTER_PK)));
        vm.expectEmit(address(km));
        emit IKeyManager.RecoveryEnded(enclave, true);
        vm.expectEmit(address(km));
        emit IKeyManager.OnboardConfirmed(enclave);
        km.confirmOnboard(enclave, receipt);
        vm.assertEq(_status(enclave), 3, "a member");
        vm.assertEq(km.memberCount(), 1, "the only member");
        vm.assertEq(km.recoveryRequest(), 0, "recovery closed");
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerNotRecoveryRequest.selector, enclave));
        km.releaseShare(enclave, 1, share, signature);
    }

    function test_RevertWhen_ReleaseShareInvalid() public {
        uint64 set = _activeGuardians();
        uint256 enclave = _request(ENCLAVE_PK);
        uint256 other = _request(OTHER_PK);
        vm.prank(owner);
        km.startRecovery(enclave);
        bytes memory share = "share";
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerNoEscrow.selector, 1));
        km.releaseShare(enclave, 1, share, _sign(GUARDIAN_PK + 1, _releaseDigest(enclave, 1, share)));
        _escrow(1, set, MASTER_PK);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerNotRecoveryRequest.selector, other));
        km.releaseShare(other, 1, share, _sign(GUARDIAN_PK + 1, _releaseDigest(other, 1, share)));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnknownGeneration.selector, 2));
        km.releaseShare(enclave, 2, share, _sign(GUARDIAN_PK + 1, _releaseDigest(enclave, 2, share)));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerNotGuardian.selector, vm.addr(GUARDIAN_PK + 6)));
        km.releaseShare(enclave, 1, share, _sign(GUARDIAN_PK + 6, _releaseDigest(enclave, 1, share)));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerNotGuardian.selector, vm.addr(MASTER_PK)));
        km.releaseShare(enclave, 1, share, _sign(MASTER_PK, _releaseDigest(enclave, 1, share)));
        // A signature over another share or request recovers to someone else.
        bytes memory forOther = _sign(GUARDIAN_PK + 1, _releaseDigest(other, 1, share));
        address someoneElse = _signer(_releaseDigest(enclave, 1, share), forOther);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerNotGuardian.selector, someoneElse));
        km.releaseShare(enclave, 1, share, forOther);
        _release(enclave, 1, GUARDIAN_PK + 1);
        bytes memory again = "share again";
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerShareAlreadyReleased.selector, enclave, 1, 1));
        km.releaseShare(enclave, 1, again, _sign(GUARDIAN_PK + 1, _releaseDigest(enclave, 1, again)));
    }

    function _signer(bytes32 digest, bytes memory signature) internal pure returns (address) {
        (bytes32 r, bytes32 s, uint8 v) = _split(signature);
        return ecrecover(digest, v, r, s);
    }

    function test_RevertWhen_ConfirmPendingRequestOutsideRecovery() public {
        uint256 enclave = _request(ENCLAVE_PK);
        bytes memory receipt = _sign(ENCLAVE_PK, _receiptDigest(enclave, vm.addr(MASTER_PK)));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerRequestNotFulfilled.selector, enclave));
        km.confirmOnboard(enclave, receipt);
    }

    function test_StartRecovery_ReplaceCancelRevoke() public {
        uint256 first = _request(ENCLAVE_PK);
        uint256 second = _request(OTHER_PK);
        vm.prank(owner);
        km.startRecovery(first);
        vm.expectEmit(address(km));
        emit IKeyManager.RecoveryEnded(first, false);
        vm.expectEmit(address(km));
        emit IKeyManager.RecoveryStarted(second);
        vm.prank(owner);
        km.startRecovery(second);
        vm.expectEmit(address(km));
        emit IKeyManager.RecoveryEnded(second, false);
        vm.prank(owner);
        km.cancelRecovery();
        vm.assertEq(km.recoveryRequest(), 0, "cancelled");
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerNotRecoveryRequest.selector, 0));
        vm.prank(owner);
        km.cancelRecovery();
        vm.prank(owner);
        km.startRecovery(first);
        vm.expectEmit(address(km));
        emit IKeyManager.RecoveryEnded(first, false);
        vm.prank(owner);
        km.revokeNode(first);
        vm.assertEq(km.recoveryRequest(), 0, "a revoked request is no longer recovered to");
    }

    function test_RevertWhen_StartRecoveryInvalid() public {
        uint256 enclave = _request(ENCLAVE_PK);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        km.startRecovery(enclave);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerRequestNotPending.selector, 99));
        vm.prank(owner);
        km.startRecovery(99);
        _fulfillAs(_ids(enclave), MASTER_PK);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerRequestNotPending.selector, enclave));
        vm.prank(owner);
        km.startRecovery(enclave);
        km = new KeyManager(owner, 0);
        vm.expectRevert(IKeyManager.KeyManagerNotBootstrapped.selector);
        vm.prank(owner);
        km.startRecovery(1);
    }
}
