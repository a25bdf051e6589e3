// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {KeyManagerFixture} from "./utils/KeyManagerFixture.sol";
import {KeyManager} from "../src/KeyManager.sol";
import {IKeyManager} from "../src/IKeyManager.sol";

/// @notice Members, revocation, rotation to a new generation, overlap and purge (docs/protocol.md#generations).
contract GenerationsTest is KeyManagerFixture {
    uint256 internal constant A_PK = 0xA1;
    uint256 internal constant B_PK = 0xB2;
    uint256 internal constant C_PK = 0xC3;
    uint256 internal constant NEXT_MASTER_PK = 0xC0FFEE;
    uint256 internal constant THIRD_MASTER_PK = 0xD00D;

    uint256 internal a;
    uint256 internal b;
    uint256 internal c;

    function setUp() public override {
        super.setUp();
        _bootstrap();
        a = _join(A_PK, MASTER_PK);
        b = _join(B_PK, MASTER_PK);
        c = _join(C_PK, MASTER_PK);
    }

    function _members() internal view returns (uint256[] memory) {
        return _ids(a, b, c);
    }

    function _start(bool emergency, uint64 overlap) internal {
        vm.prank(owner);
        km.startRotation(emergency, overlap, 1 days);
    }

    /// @dev A planned (or emergency) rotation to NEXT_MASTER_PK proposed by A, acknowledged by B, committed.
    function _rotate(bool emergency, uint64 overlap) internal returns (uint64 proposalId) {
        _start(emergency, overlap);
        proposalId = _propose(A_PK, a, NEXT_MASTER_PK, _members());
        _acknowledge(proposalId, B_PK, b);
        km.commitGeneration(proposalId);
    }

    function _attest(uint256 masterPk) internal returns (bytes memory) {
        return _sign(masterPk, _attestationDigest("web", bytes32(uint256(7))));
    }

    function _verifyAttestation(bytes memory signature) internal view returns (bool) {
        return km.verifyAttestation("web", bytes32(uint256(7)), signature);
    }

    function _verifyChain(uint256 masterPk) internal returns (bool) {
        bytes20 appId = bytes20(uint160(0xA99));
        bytes memory derived = _pubkey33(0xDE1);
        bytes memory app = _pubkey33(0xA99);
        bytes memory appSignature = _sign(0xA99, keccak256(abi.encodePacked("test-purpose:", _hexNo0x(derived))));
        bytes memory kmsSignature = _sign(masterPk, keccak256(abi.encodePacked("dstack-kms-issued:", appId, app)));
        return km.verifySignatureChain(appId, derived, app, appSignature, kmsSignature, "test-purpose");
    }

    // ------------------------------------------------------------ members

    function test_Members() public view {
        vm.assertEq(km.memberCount(), 3, "three members");
        vm.assertEq(_status(a), 3, "confirmed");
        vm.assertEq(km.requestGeneration(a), 1, "joined under generation 1");
    }

    function test_Bootstrap_RecordsGenerationOne() public {
        IKeyManager.GenerationInfo memory info = km.generationInfo(1);
        vm.assertEq(info.xPub, vm.addr(MASTER_PK), "xPub");
        vm.assertEq(info.masterPubkey, _pubkey33(MASTER_PK), "compressed key");
        vm.assertEq(info.quoteBlobHash, BOOTSTRAP_BLOB, "quote blob");
        vm.assertEq(info.committedAt, block.timestamp, "committedAt");
        vm.assertEq(info.retiresAt, 0, "current: no retirement");
        vm.assertFalse(info.revoked || info.purged, "valid");
        vm.assertEq(km.generationOf(vm.addr(MASTER_PK)), 1, "generationOf");
        vm.assertTrue(km.isGenerationValid(1), "valid");
    }

    function test_GenerationInfo_Unknown() public view {
        IKeyManager.GenerationInfo memory info = km.generationInfo(2);
        vm.assertEq(info.xPub, address(0), "no xPub");
        vm.assertEq(info.masterPubkey.length, 0, "no key");
        vm.assertEq(km.generationInfo(0).xPub, address(0), "generation 0");
        vm.assertFalse(km.isGenerationValid(0), "0 invalid");
        vm.assertFalse(km.isGenerationValid(2), "future invalid");
    }

    // ------------------------------------------------------------ the happy path

    function test_Rotation_Planned() public {
        address next = vm.addr(NEXT_MASTER_PK);
        bytes memory nextPubkey64 = _pubkey64(NEXT_MASTER_PK);

        vm.expectEmit(address(km));
        emit IKeyManager.RotationStarted(2, false, 1 days, 2 days);
        vm.prank(owner);
        km.startRotation(false, 1 days, 2 days);
        IKeyManager.RotationInfo memory r = km.rotation();
        vm.assertTrue(r.open && !r.emergency, "open, planned");
        vm.assertEq(r.overlap, 1 days, "overlap");
        vm.assertEq(r.forceDelay, 2 days, "forceDelay");
        vm.assertEq(r.startedAt, block.timestamp, "startedAt");

        _setBlob(PROPOSAL_BLOB);
        bytes memory signature = _sign(A_PK, _proposalDigest(1, 2, nextPubkey64, _members(), PROPOSAL_BLOB));
        vm.expectEmit(address(km));
        emit IKeyManager.GenerationProposed(2, 1, a, next, nextPubkey64, PROPOSAL_BLOB, _members());
        vm.expectEmit(address(km));
        emit IKeyManager.GenerationAcknowledged(1, a, 1);
        vm.prank(stranger); // anyone relays
        vm.assertEq(km.proposeGeneration(2, a, nextPubkey64, _members(), signature), 1, "proposal id");

        IKeyManager.ProposalInfo memory p = km.proposal();
        vm.assertEq(p.id, 1, "id");
        vm.assertEq(p.generation, 2, "generation");
        vm.assertEq(p.recipients, 3, "recipients");
        vm.assertEq(p.acks, 1, "proposer acknowledged");
        vm.assertEq(p.quorum, 2, "strict majority of 3");
        vm.assertEq(p.proposerId, a, "proposer");
        vm.assertEq(p.xPub, next, "xPub");
        vm.assertEq(p.masterPubkey, _pubkey33(NEXT_MASTER_PK), "key");
        vm.assertEq(p.proposalBlobHash, PROPOSAL_BLOB, "blob");
        vm.assertTrue(km.hasAcknowledged(1, a), "proposer");
        vm.assertFalse(km.hasAcknowledged(1, b), "not yet b");

        vm.expectEmit(address(km));
        emit IKeyManager.GenerationAcknowledged(1, b, 2);
        _acknowledge(1, B_PK, b);

        vm.expectEmit(address(km));
        emit IKeyManager.GenerationRetirementScheduled(1, uint64(block.timestamp + 1 days));
        vm.expectEmit(address(km));
        emit IKeyManager.GenerationCommitted(2, next, 1, 2, false);
        vm.prank(stranger);
        km.commitGeneration(1);

        vm.assertEq(km.generation(), 2, "generation");
        vm.assertEq(km.xPub(), next, "xPub");
        vm.assertEq(km.masterPubkey(), _pubkey33(NEXT_MASTER_PK), "masterPubkey");
        vm.assertEq(km.generationOf(next), 2, "generationOf");
        IKeyManager.GenerationInfo memory g1 = km.generationInfo(1);
        vm.assertEq(g1.retiresAt, block.timestamp + 1 days, "gen 1 retires after the overlap");
        vm.assertFalse(g1.revoked, "not revoked");
        IKeyManager.GenerationInfo memory g2 = km.generationInfo(2);
        vm.assertEq(g2.xPub, next, "gen 2 xPub");
        vm.assertEq(g2.quoteBlobHash, PROPOSAL_BLOB, "gen 2 quote blob");
        vm.assertEq(g2.committedAt, block.timestamp, "committedAt");
        vm.assertFalse(km.rotation().open, "closed");
        vm.assertEq(km.proposal().id, 0, "no proposal");
        vm.assertTrue(km.isGenerationValid(1) && km.isGenerationValid(2), "both verify during the overlap");

        // Onboarding continues under generation 2, and a newcomer joins.
        uint256 newcomer = _join(NEWCOMER_PK, NEXT_MASTER_PK);
        vm.assertEq(km.requestGeneration(newcomer), 2, "joined under 2");
        vm.assertEq(km.memberCount(), 4, "four members");
    }

    function test_Rotation_Emergency() public {
        _start(true, 0);
        uint64 id = _propose(A_PK, a, NEXT_MASTER_PK, _members());
        _acknowledge(id, B_PK, b);
        vm.expectEmit(address(km));
        emit IKeyManager.GenerationRevoked(1);
        vm.expectEmit(address(km));
        emit IKeyManager.GenerationCommitted(2, vm.addr(NEXT_MASTER_PK), id, 2, false);
        km.commitGeneration(id);
        vm.assertTrue(km.generationInfo(1).revoked, "gen 1 revoked at once");
        vm.assertFalse(_verifyAttestation(_attest(MASTER_PK)), "gen 1 no longer verifies");
        vm.assertTrue(_verifyAttestation(_attest(NEXT_MASTER_PK)), "gen 2 verifies");
    }

    function test_Rotation_SingleMemberCommitsOnItsOwn() public {
        KeyManager fresh = new KeyManager(owner, 0);
        km = fresh;
        _bootstrap();
        uint256 only = _join(A_PK, MASTER_PK);
        _start(false, 0);
        uint64 id = _propose(A_PK, only, NEXT_MASTER_PK, _ids(only));
        vm.assertEq(km.proposal().quorum, 1, "quorum of one");
        km.commitGeneration(id);
        vm.assertEq(km.generation(), 2, "committed");
        vm.assertFalse(_verifyAttestation(_attest(MASTER_PK)), "overlap 0: gen 1 retired at once");
    }

    function test_Rotation_Twice_EndsOlderOverlap() public {
        _rotate(false, 10 days);
        vm.warp(block.timestamp + 1 days);
        _start(false, 10 days);
        uint64 id = _propose(B_PK, b, THIRD_MASTER_PK, _members());
        _acknowledge(id, C_PK, c);
        vm.expectEmit(address(km));
        emit IKeyManager.GenerationRetirementScheduled(2, uint64(block.timestamp + 10 days));
        vm.expectEmit(address(km));
        emit IKeyManager.GenerationRetirementScheduled(1, uint64(block.timestamp));
        km.commitGeneration(id);
        vm.assertEq(km.generation(), 3, "generation 3");
        vm.assertFalse(_verifyAttestation(_attest(MASTER_PK)), "gen 1's overlap ended");
        vm.assertTrue(_verifyAttestation(_attest(NEXT_MASTER_PK)), "gen 2 in its overlap");
        vm.assertTrue(_verifyAttestation(_attest(THIRD_MASTER_PK)), "gen 3 current");
    }

    // ------------------------------------------------------------ proposals

    function test_RevertWhen_ProposeWithoutRotation() public {
        _setBlob(PROPOSAL_BLOB);
        bytes memory pubkey64 = _pubkey64(NEXT_MASTER_PK);
        bytes memory signature = _sign(A_PK, _proposalDigest(1, 2, pubkey64, _members(), PROPOSAL_BLOB));
        vm.expectRevert(IKeyManager.KeyManagerRotationNotOpen.selector);
        km.proposeGeneration(2, a, pubkey64, _members(), signature);
    }

    function test_RevertWhen_ProposeWithoutBlob() public {
        _start(false, 0);
        bytes memory pubkey64 = _pubkey64(NEXT_MASTER_PK);
        bytes memory signature = _sign(A_PK, _proposalDigest(1, 2, pubkey64, _members(), bytes32(0)));
        _clearBlobs();
        vm.expectRevert(IKeyManager.KeyManagerBlobRequired.selector);
        km.proposeGeneration(2, a, pubkey64, _members(), signature);
    }

    function test_RevertWhen_ProposeWrongGeneration() public {
        testFuzz_RevertWhen_ProposeWrongGeneration(3);
        testFuzz_RevertWhen_ProposeWrongGeneration(1);
    }

    function testFuzz_RevertWhen_ProposeWrongGeneration(uint64 gen) public {
        vm.assume(gen != 2);
        if (!km.rotation().open) _start(false, 0);
        _setBlob(PROPOSAL_BLOB);
        bytes memory pubkey64 = _pubkey64(NEXT_MASTER_PK);
        bytes memory signature = _sign(A_PK, _proposalDigest(1, gen, pubkey64, _members(), PROPOSAL_BLOB));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerWrongGeneration.selector, gen, uint64(2)));
        km.proposeGeneration(gen, a, pubkey64, _members(), signature);
    }

    function test_RevertWhen_ProposerIsNotAMember() public {
        _start(false, 0);
        uint256 pending = _request(NEWCOMER_PK);
        uint256 fulfilled = _request(OTHER_PK);
        _fulfillAs(_ids(fulfilled), MASTER_PK);
        _expectProposeRevert(NEWCOMER_PK, pending, abi.encodeWithSelector(IKeyManager.KeyManagerNotMember.selector, pending));
        _expectProposeRevert(OTHER_PK, fulfilled, abi.encodeWithSelector(IKeyManager.KeyManagerNotMember.selector, fulfilled));
        _expectProposeRevert(A_PK, 99, abi.encodeWithSelector(IKeyManager.KeyManagerNotMember.selector, 99));
    }

    function test_RevertWhen_ProposerIsRevoked() public {
        vm.prank(owner);
        km.revokeNode(a);
        _start(false, 0);
        _setBlob(PROPOSAL_BLOB);
        bytes memory pubkey64 = _pubkey64(NEXT_MASTER_PK);
        bytes memory signature = _sign(A_PK, _proposalDigest(1, 2, pubkey64, _ids(b, c), PROPOSAL_BLOB));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerNodeRevoked.selector, a));
        km.proposeGeneration(2, a, pubkey64, _ids(b, c), signature);
    }

    function _expectProposeRevert(uint256 proposerPk, uint256 proposerId, bytes memory revertData) internal {
        _setBlob(PROPOSAL_BLOB);
        bytes memory pubkey64 = _pubkey64(NEXT_MASTER_PK);
        bytes memory signature = _sign(proposerPk, _proposalDigest(1, 2, pubkey64, _members(), PROPOSAL_BLOB));
        vm.expectRevert(revertData);
        km.proposeGeneration(2, proposerId, pubkey64, _members(), signature);
    }

    function test_RevertWhen_RecipientIsRevoked() public {
        vm.prank(owner);
        km.revokeNode(c);
        _start(true, 0);
        // The revoked node's key among the recipients: the proposal is refused, so it never gets a share.
        _expectRecipientsRevert(_ids(a, b, c), abi.encodeWithSelector(IKeyManager.KeyManagerInvalidRecipients.selector, 3, 2));
        _expectRecipientsRevert(_ids(a, c), abi.encodeWithSelector(IKeyManager.KeyManagerNodeRevoked.selector, c));
        _propose(A_PK, a, NEXT_MASTER_PK, _ids(a, b));
        vm.assertEq(km.proposal().recipients, 2, "the revoked node is not a recipient");
    }

    function test_RevertWhen_RecipientsAreNotEveryMember() public {
        _start(false, 0);
        uint256 pending = _request(NEWCOMER_PK);
        _expectRecipientsRevert(_ids(a, b), abi.encodeWithSelector(IKeyManager.KeyManagerInvalidRecipients.selector, 2, 3));
        _expectRecipientsRevert(_ids(a, c, b), abi.encodeWithSelector(IKeyManager.KeyManagerInvalidRecipients.selector, 3, 3));
        _expectRecipientsRevert(_ids(a, a, b), abi.encodeWithSelector(IKeyManager.KeyManagerInvalidRecipients.selector, 3, 3));
        _expectRecipientsRevert(_ids(a, b, pending), abi.encodeWithSelector(IKeyManager.KeyManagerNotMember.selector, pending));
        _expectRecipientsRevert(_ids(0, a, b), abi.encodeWithSelector(IKeyManager.KeyManagerInvalidRecipients.selector, 3, 3));
    }

    function _expectRecipientsRevert(uint256[] memory recipients, bytes memory revertData) internal {
        _setBlob(PROPOSAL_BLOB);
        bytes memory pubkey64 = _pubkey64(NEXT_MASTER_PK);
        bytes memory signature = _sign(A_PK, _proposalDigest(1, 2, pubkey64, recipients, PROPOSAL_BLOB));
        vm.expectRevert(revertData);
        km.proposeGeneration(2, a, pubkey64, recipients, signature);
    }

    function test_RevertWhen_ProposalSignedByMasterKey() public {
        // A leaked master secret alone cannot install a successor: only a member's node key signs a proposal.
        _start(true, 0);
        _setBlob(PROPOSAL_BLOB);
        bytes memory pubkey64 = _pubkey64(NEXT_MASTER_PK);
        bytes32 digest = _proposalDigest(1, 2, pubkey64, _members(), PROPOSAL_BLOB);
        bytes memory byMaster = _sign(MASTER_PK, digest);
        vm.expectRevert(IKeyManager.KeyManagerInvalidSignature.selector);
        km.proposeGeneration(2, a, pubkey64, _members(), byMaster);
        // Nor another member's key for a's id, nor a's key over other fields.
        vm.expectRevert(IKeyManager.KeyManagerInvalidSignature.selector);
        km.proposeGeneration(2, a, pubkey64, _members(), _sign(B_PK, digest));
        bytes memory otherBlob = _sign(A_PK, _proposalDigest(1, 2, pubkey64, _members(), REQUEST_BLOB));
        vm.expectRevert(IKeyManager.KeyManagerInvalidSignature.selector);
        km.proposeGeneration(2, a, pubkey64, _members(), otherBlob);
        bytes memory otherKey = _sign(A_PK, _proposalDigest(1, 2, _pubkey64(THIRD_MASTER_PK), _members(), PROPOSAL_BLOB));
        vm.expectRevert(IKeyManager.KeyManagerInvalidSignature.selector);
        km.proposeGeneration(2, a, pubkey64, _members(), otherKey);
    }

    function test_RevertWhen_ProposalSignatureReplayed() public {
        _start(false, 0);
        _setBlob(PROPOSAL_BLOB);
        bytes memory pubkey64 = _pubkey64(NEXT_MASTER_PK);
        bytes memory first = _sign(A_PK, _proposalDigest(1, 2, pubkey64, _members(), PROPOSAL_BLOB));
        km.proposeGeneration(2, a, pubkey64, _members(), first);
        _propose(B_PK, b, THIRD_MASTER_PK, _members()); // supersedes proposal 1
        // The first signature names proposal 1: it cannot bring it back to reset the acknowledgements of proposal 2.
        _setBlob(PROPOSAL_BLOB);
        vm.expectRevert(IKeyManager.KeyManagerInvalidSignature.selector);
        km.proposeGeneration(2, a, pubkey64, _members(), first);
    }

    function test_RevertWhen_ProposeReusedOrInvalidMasterKey() public {
        _start(false, 0);
        _setBlob(PROPOSAL_BLOB);
        bytes memory reused = _pubkey64(MASTER_PK);
        bytes memory signature = _sign(A_PK, _proposalDigest(1, 2, reused, _members(), PROPOSAL_BLOB));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerMasterKeyReused.selector, vm.addr(MASTER_PK)));
        km.proposeGeneration(2, a, reused, _members(), signature);
        bytes memory offCurve = abi.encodePacked(uint256(1), uint256(1));
        vm.expectRevert(IKeyManager.KeyManagerPubkeyNotOnCurve.selector);
        km.proposeGeneration(2, a, offCurve, _members(), signature);
    }

    function test_Propose_SupersedesPending() public {
        _start(false, 0);
        uint64 first = _propose(A_PK, a, NEXT_MASTER_PK, _members());
        _acknowledge(first, B_PK, b);
        // A proposer that died mid-way, or whose proposal members refuse: another member proposes again.
        _setBlob(PROPOSAL_BLOB);
        bytes memory pubkey64 = _pubkey64(THIRD_MASTER_PK);
        bytes memory signature = _sign(C_PK, _proposalDigest(2, 2, pubkey64, _members(), PROPOSAL_BLOB));
        vm.expectEmit(address(km));
        emit IKeyManager.GenerationProposalDropped(first);
        uint64 second = km.proposeGeneration(2, c, pubkey64, _members(), signature);
        vm.assertEq(second, 2, "second id");
        IKeyManager.ProposalInfo memory p = km.proposal();
        vm.assertEq(p.acks, 1, "acknowledgements start over");
        vm.assertEq(p.xPub, vm.addr(THIRD_MASTER_PK), "new key");
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnknownProposal.selector, first));
        km.commitGeneration(first);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerQuorumNotReached.selector, 1, 2));
        km.commitGeneration(second);
        _acknowledge(second, A_PK, a);
        km.commitGeneration(second);
        vm.assertEq(km.xPub(), vm.addr(THIRD_MASTER_PK), "the superseding key");
    }

    // ------------------------------------------------------------ acknowledgements and quorum

    function test_RevertWhen_CommitBelowQuorum() public {
        _start(false, 0);
        uint64 id = _propose(A_PK, a, NEXT_MASTER_PK, _members());
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerQuorumNotReached.selector, 1, 2));
        km.commitGeneration(id);
        vm.assertEq(km.generation(), 1, "not committed");
    }

    function test_Quorum() public {
        testFuzz_Quorum(4, 2);
        testFuzz_Quorum(4, 3);
        testFuzz_Quorum(5, 3);
    }

    /// @dev With m members and k acknowledgements (the proposer's included), the commit succeeds iff k > m / 2.
    function testFuzz_Quorum(uint8 members, uint8 acks) public {
        members = uint8(bound(members, 1, 7));
        acks = uint8(bound(acks, 1, members));
        km = new KeyManager(owner, 0);
        _bootstrap();
        uint256[] memory ids = new uint256[](members);
        for (uint256 i; i < members; ++i) {
            ids[i] = _join(0x1000 + i, MASTER_PK);
        }
        _start(false, 0);
        uint64 id = _propose(0x1000, ids[0], NEXT_MASTER_PK, ids);
        for (uint256 i = 1; i < acks; ++i) {
            _acknowledge(id, 0x1000 + i, ids[i]);
        }
        if (uint256(acks) * 2 > members) {
            km.commitGeneration(id);
            vm.assertEq(km.generation(), 2, "committed at a strict majority");
        } else {
            vm.expectRevert(
                abi.encodeWithSelector(IKeyManager.KeyManagerQuorumNotReached.selector, acks, uint32(members / 2 + 1))
            );
            km.commitGeneration(id);
        }
    }

    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        return min + x % (max - min + 1);
    }

    function test_RevertWhen_AcknowledgeInvalid() public {
        _start(false, 0);
        uint64 id = _propose(A_PK, a, NEXT_MASTER_PK, _members());
        address next = vm.addr(NEXT_MASTER_PK);
        uint256 pending = _request(NEWCOMER_PK);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerNotMember.selector, pending));
        km.acknowledgeGeneration(id, pending, _sign(NEWCOMER_PK, _ackDigest(id, 2, next)));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerAlreadyAcknowledged.selector, id, a));
        km.acknowledgeGeneration(id, a, _sign(A_PK, _ackDigest(id, 2, next)));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnknownProposal.selector, id + 1));
        km.acknowledgeGeneration(id + 1, b, _sign(B_PK, _ackDigest(id + 1, 2, next)));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnknownProposal.selector, 0));
        km.acknowledgeGeneration(0, b, _sign(B_PK, _ackDigest(0, 2, next)));
        vm.expectRevert(IKeyManager.KeyManagerInvalidSignature.selector);
        km.acknowledgeGeneration(id, b, _sign(C_PK, _ackDigest(id, 2, next))); // c's key for b
        vm.expectRevert(IKeyManager.KeyManagerInvalidSignature.selector);
        km.acknowledgeGeneration(id, b, _sign(B_PK, _ackDigest(id, 2, stranger))); // another key
        vm.expectRevert(IKeyManager.KeyManagerInvalidSignature.selector);
        km.acknowledgeGeneration(id, b, _sign(B_PK, _ackDigest(id, 3, next))); // another generation
        vm.expectRevert(IKeyManager.KeyManagerInvalidSignature.selector);
        km.acknowledgeGeneration(id, b, _sign(MASTER_PK, _ackDigest(id, 2, next))); // the master key
        _acknowledge(id, B_PK, b);
        vm.assertEq(km.proposal().acks, 2, "one good acknowledgement");
    }

    function test_RevertWhen_AcknowledgeByRevokedNode() public {
        _start(false, 0);
        uint64 first = _propose(A_PK, a, NEXT_MASTER_PK, _members());
        vm.prank(owner);
        km.revokeNode(c);
        vm.assertEq(km.proposal().id, 0, "the proposal holding c's share was dropped");
        uint64 id = _propose(A_PK, a, NEXT_MASTER_PK, _ids(a, b));
        vm.assertTrue(id != first, "a new proposal");
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerNodeRevoked.selector, c));
        km.acknowledgeGeneration(id, c, _sign(C_PK, _ackDigest(id, 2, vm.addr(NEXT_MASTER_PK))));
    }

    // ------------------------------------------------------------ force, cancel, start

    function test_ForceCommitAfterDelay() public {
        _start(false, 0);
        uint64 id = _propose(A_PK, a, NEXT_MASTER_PK, _members());
        uint64 forceAt = uint64(block.timestamp + 1 days);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerForceTooEarly.selector, forceAt));
        vm.prank(owner);
        km.forceCommitGeneration(id);
        vm.warp(forceAt);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        km.forceCommitGeneration(id);
        vm.expectEmit(address(km));
        emit IKeyManager.GenerationCommitted(2, vm.addr(NEXT_MASTER_PK), id, 1, true);
        vm.prank(owner);
        km.forceCommitGeneration(id);
        vm.assertEq(km.generation(), 2, "forced");
    }

    function test_RevertWhen_ForceCommitUnknownProposal() public {
        _start(false, 0);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnknownProposal.selector, 1));
        vm.prank(owner);
        km.forceCommitGeneration(1);
    }

    function test_CancelRotation() public {
        _start(false, 0);
        uint64 id = _propose(A_PK, a, NEXT_MASTER_PK, _members());
        vm.expectEmit(address(km));
        emit IKeyManager.GenerationProposalDropped(id);
        vm.expectEmit(address(km));
        emit IKeyManager.RotationCancelled(2);
        vm.prank(owner);
        km.cancelRotation();
        vm.assertFalse(km.rotation().open, "closed");
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnknownProposal.selector, id));
        km.commitGeneration(id);
        _join(NEWCOMER_PK, MASTER_PK); // onboarding resumes
        vm.expectRevert(IKeyManager.KeyManagerRotationNotOpen.selector);
        vm.prank(owner);
        km.cancelRotation();
    }

    function test_RevertWhen_StartRotationInvalid() public {
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        km.startRotation(false, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerInvalidOverlap.selector, uint64(1)));
        vm.prank(owner);
        km.startRotation(true, 1, 0);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerInvalidOverlap.selector, uint64(365 days + 1)));
        vm.prank(owner);
        km.startRotation(false, 365 days + 1, 0);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerInvalidForceDelay.selector, uint64(365 days + 1)));
        vm.prank(owner);
        km.startRotation(false, 0, 365 days + 1);
        vm.prank(owner);
        km.startRotation(false, 365 days, 365 days);
        vm.expectRevert(IKeyManager.KeyManagerRotationInProgress.selector);
        vm.prank(owner);
        km.startRotation(false, 0, 0);
    }

    function test_RevertWhen_StartRotationBeforeBootstrap() public {
        km = new KeyManager(owner, 0);
        vm.expectRevert(IKeyManager.KeyManagerNotBootstrapped.selector);
        vm.prank(owner);
        km.startRotation(false, 0, 0);
    }

    // ------------------------------------------------------------ onboarding across a rotation

    function test_Onboarding_WaitsWhileProposalPending() public {
        uint256 answered = _request(NEWCOMER_PK);
        _fulfillAs(_ids(answered), MASTER_PK);
        uint256 waiting = _request(OTHER_PK);
        _start(false, 1 days);
        uint64 id = _propose(A_PK, a, NEXT_MASTER_PK, _members());

        _setBlob(RESPONSE_BLOB);
        bytes memory response = _sign(MASTER_PK, _responseDigest(_ids(waiting), RESPONSE_BLOB, 1));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerProposalPending.selector, id));
        km.fulfillOnboard(_ids(waiting), response);
        bytes memory receipt = _sign(NEWCOMER_PK, _receiptDigest(answered, vm.addr(MASTER_PK)));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerProposalPending.selector, id));
        km.confirmOnboard(answered, receipt);

        _acknowledge(id, B_PK, b);
        km.commitGeneration(id);

        // Answered under generation 1 only: it cannot confirm for generation 2, and is answered again.
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerStaleResponse.selector, answered, 1, 2));
        km.confirmOnboard(answered, receipt);
        vm.expectRevert(IKeyManager.KeyManagerInvalidSignature.selector); // gen 1's key no longer answers
        km.fulfillOnboard(_ids(waiting), response);
        _fulfillAs(_ids(answered, waiting), NEXT_MASTER_PK);
        vm.assertEq(km.requestGeneration(answered), 2, "answered again under 2");
        km.confirmOnboard(answered, _sign(NEWCOMER_PK, _receiptDigest(answered, vm.addr(NEXT_MASTER_PK))));
        vm.assertEq(km.memberCount(), 4, "member");
        // An answer under the current generation is not answered twice.
        _setBlob(RESPONSE_BLOB);
        bytes memory again = _sign(NEXT_MASTER_PK, _responseDigest(_ids(waiting), RESPONSE_BLOB, 2));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerRequestAlreadyFulfilled.selector, waiting));
        km.fulfillOnboard(_ids(waiting), again);
    }

    function test_Onboarding_RotationStartedWithoutProposalDoesNotBlock() public {
        _start(false, 0);
        uint256 id = _join(NEWCOMER_PK, MASTER_PK);
        vm.assertEq(km.memberCount(), 4, "joined while the rotation waits for a proposal");
        uint256[] memory recipients = new uint256[](4);
        (recipients[0], recipients[1], recipients[2], recipients[3]) = (a, b, c, id);
        _propose(A_PK, a, NEXT_MASTER_PK, recipients); // and is a recipient
    }

    // ------------------------------------------------------------ revocation

    function test_RevokeNode() public {
        vm.expectEmit(address(km));
        emit IKeyManager.NodeRevoked(b, vm.addr(B_PK));
        vm.prank(owner);
        km.revokeNode(b);
        vm.assertEq(_status(b), 4, "revoked");
        vm.assertEq(km.memberCount(), 2, "two members");
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerNodeRevoked.selector, b));
        vm.prank(owner);
        km.revokeNode(b);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnknownRequest.selector, 99));
        vm.prank(owner);
        km.revokeNode(99);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        km.revokeNode(a);
    }

    function test_RevokeNode_PendingRequestIsNeverAnswered() public {
        uint256 pending = _request(NEWCOMER_PK);
        uint256 answered = _request(OTHER_PK);
        _fulfillAs(_ids(answered), MASTER_PK);
        vm.startPrank(owner);
        km.revokeNode(pending);
        km.revokeNode(answered);
        vm.stopPrank();
        vm.assertEq(km.memberCount(), 3, "not members: the count is unchanged");
        _setBlob(RESPONSE_BLOB);
        bytes memory response = _sign(MASTER_PK, _responseDigest(_ids(pending), RESPONSE_BLOB, 1));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerNodeRevoked.selector, pending));
        km.fulfillOnboard(_ids(pending), response);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerNodeRevoked.selector, answered));
        km.confirmOnboard(answered, _sign(OTHER_PK, _receiptDigest(answered, vm.addr(MASTER_PK))));
    }

    function test_RevokeNodeThenEmergencyRotation() public {
        vm.prank(owner);
        km.revokeNode(c);
        _start(true, 0);
        uint64 id = _propose(A_PK, a, NEXT_MASTER_PK, _ids(a, b));
        _acknowledge(id, B_PK, b);
        km.commitGeneration(id);
        vm.assertFalse(_verifyAttestation(_attest(MASTER_PK)), "generation 1 stops verifying");
        vm.assertFalse(_verifyChain(MASTER_PK), "its signature chains too");
        vm.assertTrue(_verifyChain(NEXT_MASTER_PK), "generation 2 chains verify");
    }

    function test_RevokeGeneration_Current() public {
        vm.expectEmit(address(km));
        emit IKeyManager.GenerationRevoked(1);
        vm.prank(owner);
        km.revokeGeneration(1);
        vm.assertFalse(_verifyAttestation(_attest(MASTER_PK)), "current revoked: false");
        vm.assertFalse(km.isGenerationValid(1), "invalid");
        uint256 pending = _request(NEWCOMER_PK);
        _setBlob(RESPONSE_BLOB);
        bytes memory response = _sign(MASTER_PK, _responseDigest(_ids(pending), RESPONSE_BLOB, 1));
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerGenerationRevoked.selector, 1));
        km.fulfillOnboard(_ids(pending), response);
        // A rotation still works: proposals are signed by node keys, not by the revoked master key.
        _rotate(false, 1 days);
        vm.assertTrue(km.generationInfo(1).revoked, "stays revoked");
        vm.assertFalse(_verifyAttestation(_attest(MASTER_PK)), "no overlap for a revoked generation");
        vm.assertTrue(_verifyAttestation(_attest(NEXT_MASTER_PK)), "generation 2");
        _fulfillAs(_ids(pending), NEXT_MASTER_PK);
    }

    function test_RevertWhen_RevokeGenerationInvalid() public {
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnknownGeneration.selector, 0));
        vm.prank(owner);
        km.revokeGeneration(0);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnknownGeneration.selector, 2));
        vm.prank(owner);
        km.revokeGeneration(2);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        km.revokeGeneration(1);
        vm.prank(owner);
        km.revokeGeneration(1);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerGenerationRevoked.selector, 1));
        vm.prank(owner);
        km.revokeGeneration(1);
    }

    // ------------------------------------------------------------ verification across generations

    function test_VerifyOlderGenerationDuringOverlap() public {
        testFuzz_VerifyOlderGenerationDuringOverlap(7 days, 7 days - 1);
        testFuzz_VerifyOlderGenerationDuringOverlap(7 days, 7 days);
    }

    function testFuzz_VerifyOlderGenerationDuringOverlap(uint64 overlap, uint64 elapsed) public {
        overlap = uint64(bound(overlap, 0, 365 days));
        elapsed = uint64(bound(elapsed, 0, 400 days));
        if (km.generation() == 1) _rotate(false, overlap);
        uint256 committedAt = km.generationInfo(2).committedAt;
        vm.warp(committedAt + elapsed);
        bool inOverlap = elapsed < overlap;
        vm.assertEq(_verifyAttestation(_attest(MASTER_PK)), inOverlap, "generation 1 attestation");
        vm.assertEq(_verifyChain(MASTER_PK), inOverlap, "generation 1 signature chain");
        vm.assertEq(km.isGenerationValid(1), inOverlap, "isGenerationValid");
        vm.assertTrue(_verifyAttestation(_attest(NEXT_MASTER_PK)), "generation 2 always");
        vm.assertTrue(_verifyChain(NEXT_MASTER_PK), "generation 2 chain always");
    }

    function test_VerifyOlderGeneration_StopsAfterWarpOrRevocation() public {
        _rotate(false, 1 days);
        bytes memory old = _attest(MASTER_PK);
        vm.assertTrue(_verifyAttestation(old), "during the overlap");
        vm.warp(block.timestamp + 1 days);
        vm.assertFalse(_verifyAttestation(old), "after it");

        km = new KeyManager(owner, 0);
        setUp();
        _rotate(false, 1 days);
        old = _attest(MASTER_PK);
        vm.assertTrue(_verifyAttestation(old), "during the overlap");
        vm.expectEmit(address(km));
        emit IKeyManager.GenerationRevoked(1);
        vm.prank(owner);
        km.revokeGeneration(1);
        vm.assertFalse(_verifyAttestation(old), "revoked during the overlap");
        vm.assertFalse(_verifyChain(MASTER_PK), "chain too");
    }

    function test_VerifyAttestation_FalseForProposedKey() public {
        _start(false, 0);
        _propose(A_PK, a, NEXT_MASTER_PK, _members());
        vm.assertFalse(_verifyAttestation(_attest(NEXT_MASTER_PK)), "a proposal does not verify before its commit");
    }

    // ------------------------------------------------------------ purge

    function test_PurgeGeneration() public {
        _rotate(false, 1 days);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerGenerationNotRetired.selector, 1));
        vm.prank(owner);
        km.purgeGeneration(1);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerGenerationNotRetired.selector, 2));
        vm.prank(owner);
        km.purgeGeneration(2);
        vm.warp(block.timestamp + 1 days);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        km.purgeGeneration(1);
        vm.expectEmit(address(km));
        emit IKeyManager.GenerationPurged(1);
        vm.prank(owner);
        km.purgeGeneration(1);
        vm.assertTrue(km.generationInfo(1).purged, "purged");
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerGenerationPurged.selector, 1));
        vm.prank(owner);
        km.purgeGeneration(1);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnknownGeneration.selector, 3));
        vm.prank(owner);
        km.purgeGeneration(3);
    }

    function test_PurgeGeneration_RevokedAtOnce() public {
        _rotate(true, 0);
        vm.prank(owner);
        km.purgeGeneration(1);
        vm.assertTrue(km.generationInfo(1).purged, "a revoked generation may be purged at once");
    }
}
