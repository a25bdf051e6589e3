// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {KeyManagerFixture} from "./utils/KeyManagerFixture.sol";

/// @notice Pins the storage slots that nodes prove against a verified state root (docs/protocol.md#registry-contract
/// "Storage layout"): each value is read back with vm.load at the documented slot and offset, so a reordering of
/// the contract's variables fails here as well as in the TypeScript pin against `forge inspect`.
contract StorageLayoutTest is KeyManagerFixture {
    function _slot(uint256 slot) internal view returns (uint256) {
        return uint256(vm.load(address(km), bytes32(slot)));
    }

    function _entry(bytes32 key, uint256 slot) internal view returns (uint256) {
        return uint256(vm.load(address(km), keccak256(abi.encode(key, slot))));
    }

    function _field(uint256 word, uint256 byteOffset, uint256 bytesLength) internal pure returns (uint256) {
        return (word >> (8 * byteOffset)) & ((1 << (8 * bytesLength)) - 1);
    }

    function test_StorageLayout_OwnershipAndRoles() public {
        vm.prank(owner);
        km.transferOwnership(stranger);
        vm.prank(owner);
        km.setBootstrapper(address(0xB007));
        vm.assertEq(address(uint160(_slot(0))), owner, "slot 0: owner");
        vm.assertEq(address(uint160(_slot(1))), stranger, "slot 1: pending owner");
        vm.assertEq(address(uint160(_slot(9))), address(0xB007), "slot 9: bootstrapper");
    }

    function test_StorageLayout_MasterKey() public {
        _bootstrap();
        uint256 word = _slot(2);
        vm.assertEq(address(uint160(_field(word, 0, 20))), vm.addr(MASTER_PK), "slot 2 bytes 0-19: xPub");
        vm.assertEq(_field(word, 20, 8), 1, "slot 2 bytes 20-27: generation");
        bytes memory compressed = _pubkey33(MASTER_PK);
        vm.assertEq(_field(word, 28, 1), uint8(compressed[0]), "slot 2 byte 28: prefix");
        vm.assertEq(_field(word, 29, 3), 0, "slot 2 bytes 29-31: not revoked, no proposal, unused");
        vm.assertEq(bytes32(_slot(3)), bytes32(uint256(vm.createWallet(MASTER_PK).publicKeyX)), "slot 3: x");
        vm.assertEq(bytes32(_slot(4)), BOOTSTRAP_BLOB, "slot 4: bootstrap quote blob hash");
    }

    function test_StorageLayout_PolicyAndCounters() public {
        _bootstrap();
        _request(NEWCOMER_PK);
        _request(OTHER_PK);
        vm.prank(owner);
        km.setRequestTtl(300);
        vm.prank(owner);
        km.setTcbPolicy(0x23, 9 days, true);
        vm.prank(owner);
        km.setMinTcbEvaluationDataNumber(0xA1B2C3D4);
        uint256 word = _slot(5);
        vm.assertEq(_field(word, 0, 8), 2, "slot 5 bytes 0-7: requestCount");
        vm.assertEq(_field(word, 8, 8), 300, "slot 5 bytes 8-15: requestTtl");
        vm.assertEq(_field(word, 16, 2), 0x23, "slot 5 bytes 16-17: accepted statuses");
        vm.assertEq(_field(word, 18, 8), 9 days, "slot 5 bytes 18-25: max collateral age");
        vm.assertEq(_field(word, 26, 1), 1, "slot 5 byte 26: FMSPC allow-list on");
        vm.assertEq(_field(word, 27, 4), 0xA1B2C3D4, "slot 5 bytes 27-30: min TCB evaluation data number");
        vm.assertEq(_field(word, 31, 1), 0, "slot 5 byte 31: unused");
    }

    function test_StorageLayout_AllowLists() public {
        bytes memory raw = abi.encodePacked(uint8(2), bytes32(uint256(1)), bytes32(uint256(2)), uint16(3), uint16(4));
        bytes32 id = keccak256(raw);
        bytes6 fmspc = 0x00906ED50000;
        vm.prank(owner);
        km.addMeasurement(id, raw);
        vm.prank(owner);
        km.setFmspc(fmspc, true);
        vm.assertEq(_entry(id, 6), block.timestamp, "slot 6: measurement activatesAt");
        vm.assertEq(_entry(bytes32(fmspc), 7), 1, "slot 7: FMSPC allowed (bytes6 key right-padded)");
        vm.assertEq(_entry(bytes32(uint256(uint48(fmspc))), 7), 0, "not left-padded");
    }

    function test_StorageLayout_Requests() public {
        _bootstrap();
        uint256 id = _request(NEWCOMER_PK);
        (address key, uint64 expiresAt, uint8 status, bytes32 commitment) = km.getRequest(id);
        bytes32 base = keccak256(abi.encode(id, uint256(8)));
        uint256 word = uint256(vm.load(address(km), base));
        vm.assertEq(address(uint160(_field(word, 0, 20))), key, "+0 bytes 0-19: key");
        vm.assertEq(_field(word, 20, 5), expiresAt, "+0 bytes 20-24: expiresAt");
        vm.assertEq(_field(word, 25, 1), status, "+0 byte 25: status");
        vm.assertEq(_field(word, 26, 6), 0, "+0 bytes 26-31: generation (unanswered)");
        vm.assertEq(vm.load(address(km), bytes32(uint256(base) + 1)), commitment, "+1: commitment");
        _fulfill(_ids(id));
        word = uint256(vm.load(address(km), base));
        vm.assertEq(_field(word, 25, 1), 2, "status after fulfil");
        vm.assertEq(_field(word, 26, 6), 1, "answered under generation 1");
    }

    function test_StorageLayout_FreshnessMarks() public {
        bytes32 mark = keccak256("mark");
        km.markFresh(mark);
        vm.assertEq(_entry(mark, 10), block.number, "slot 10: freshness mark block");
    }

    function _nested(bytes32 outer, bytes32 inner, uint256 slot) internal view returns (uint256) {
        return uint256(vm.load(address(km), keccak256(abi.encode(inner, keccak256(abi.encode(outer, slot))))));
    }

    uint256 internal constant A_PK = 0xA1;
    uint256 internal constant B_PK = 0xB2;
    uint256 internal constant NEXT_MASTER_PK = 0xC0FFEE;

    function test_StorageLayout_GenerationsAndRotation() public {
        _bootstrap();
        uint256 a = _join(A_PK, MASTER_PK);
        uint256 b = _join(B_PK, MASTER_PK);
        vm.prank(owner);
        km.startRotation(false, 3 days, 5 days);
        uint256 rotation = _slot(14);
        vm.assertEq(_field(rotation, 0, 1), 1, "slot 14 byte 0: open");
        vm.assertEq(_field(rotation, 1, 1), 0, "slot 14 byte 1: emergency");
        vm.assertEq(_field(rotation, 2, 8), 3 days, "slot 14 bytes 2-9: overlap");
        vm.assertEq(_field(rotation, 10, 8), 5 days, "slot 14 bytes 10-17: forceDelay");
        vm.assertEq(_field(rotation, 18, 8), block.timestamp, "slot 14 bytes 18-25: startedAt");

        uint64 id = _propose(A_PK, a, NEXT_MASTER_PK, _ids(a, b));
        vm.assertEq(_field(_slot(2), 30, 1), 1, "slot 2 byte 30: proposal pending");
        uint256 counters = _slot(13);
        vm.assertEq(_field(counters, 0, 8), 2, "slot 13 bytes 0-7: memberCount");
        vm.assertEq(_field(counters, 8, 8), 1, "slot 13 bytes 8-15: proposalCount");
        uint256 p0 = _slot(15);
        vm.assertEq(_field(p0, 0, 8), id, "slot 15 bytes 0-7: proposal id");
        vm.assertEq(_field(p0, 8, 8), 2, "slot 15 bytes 8-15: generation");
        vm.assertEq(_field(p0, 16, 8), block.timestamp, "slot 15 bytes 16-23: proposedAt");
        vm.assertEq(_field(p0, 24, 4), 2, "slot 15 bytes 24-27: recipients");
        vm.assertEq(_field(p0, 28, 4), 1, "slot 15 bytes 28-31: acks");
        uint256 p1 = _slot(16);
        vm.assertEq(address(uint160(_field(p1, 0, 20))), vm.addr(NEXT_MASTER_PK), "slot 16 bytes 0-19: xPub");
        vm.assertEq(_field(p1, 20, 8), a, "slot 16 bytes 20-27: proposerId");
        bytes memory next33 = _pubkey33(NEXT_MASTER_PK);
        vm.assertEq(_field(p1, 28, 1), uint8(next33[0]), "slot 16 byte 28: prefix");
        vm.assertEq(bytes32(_slot(17)), bytes32(vm.createWallet(NEXT_MASTER_PK).publicKeyX), "slot 17: x");
        vm.assertEq(bytes32(_slot(18)), PROPOSAL_BLOB, "slot 18: blob hash");
        vm.assertEq(_nested(bytes32(uint256(id)), bytes32(a), 19), 1, "slot 19: acknowledged[proposal][member]");
        vm.assertEq(_nested(bytes32(uint256(id)), bytes32(b), 19), 0, "not yet b");

        _acknowledge(id, B_PK, b);
        km.commitGeneration(id);
        vm.assertEq(_field(_slot(2), 20, 8), 2, "slot 2: generation 2");
        vm.assertEq(_field(_slot(2), 30, 1), 0, "slot 2 byte 30: no proposal pending");
        vm.assertEq(_slot(14), 0, "slot 14 cleared");
        vm.assertEq(_slot(15), 0, "slot 15 cleared");

        bytes32 g1 = keccak256(abi.encode(uint256(1), uint256(11)));
        uint256 g1word = uint256(vm.load(address(km), g1));
        vm.assertEq(address(uint160(_field(g1word, 0, 20))), vm.addr(MASTER_PK), "generations[1] +0 bytes 0-19: xPub");
        vm.assertEq(_field(g1word, 20, 8), block.timestamp + 3 days, "+0 bytes 20-27: retiresAt");
        vm.assertEq(_field(g1word, 28, 1), uint8(_pubkey33(MASTER_PK)[0]), "+0 byte 28: prefix");
        vm.assertEq(_field(g1word, 29, 1), 0, "+0 byte 29: revoked");
        vm.assertEq(_field(g1word, 30, 1), 0, "+0 byte 30: purged");
        vm.assertEq(vm.load(address(km), bytes32(uint256(g1) + 1)), bytes32(vm.createWallet(MASTER_PK).publicKeyX), "+1: x");
        vm.assertEq(vm.load(address(km), bytes32(uint256(g1) + 2)), BOOTSTRAP_BLOB, "+2: quote blob hash");
        vm.assertEq(vm.load(address(km), bytes32(uint256(g1) + 3)), bytes32(0), "+3: escrow hash");
        uint256 g1tail = uint256(vm.load(address(km), bytes32(uint256(g1) + 4)));
        vm.assertEq(_field(g1tail, 0, 8), 0, "+4 bytes 0-7: escrow guardian set");
        vm.assertEq(_field(g1tail, 8, 8), 1_700_000_000, "+4 bytes 8-15: committedAt");
        vm.assertEq(_entry(bytes32(uint256(uint160(vm.addr(NEXT_MASTER_PK)))), 12), 2, "slot 12: generationOf");

        vm.prank(owner);
        km.revokeGeneration(2);
        vm.assertEq(_field(_slot(2), 29, 1), 1, "slot 2 byte 29: current revoked");
        vm.prank(owner);
        km.revokeNode(b);
        uint256 bWord = uint256(vm.load(address(km), keccak256(abi.encode(b, uint256(8)))));
        vm.assertEq(_field(bWord, 25, 1), 4, "revoked status");
        vm.assertEq(_field(_slot(13), 0, 8), 1, "memberCount after revocation");
    }

    function test_StorageLayout_GuardiansAndRecovery() public {
        _bootstrap();
        bytes memory keys = abi.encodePacked(_pubkey64(0x6001), _pubkey64(0x6002));
        vm.prank(owner);
        uint64 set = km.setGuardians(keys, 2);
        uint256 counters = _slot(20);
        vm.assertEq(_field(counters, 0, 8), 1, "slot 20 bytes 0-7: guardian set count");
        vm.assertEq(_field(counters, 8, 8), 0, "slot 20 bytes 8-15: settled set");
        vm.assertEq(_field(counters, 16, 8), set, "slot 20 bytes 16-23: pending set");
        bytes32 base = keccak256(abi.encode(uint256(set), uint256(21)));
        vm.assertEq(vm.load(address(km), base), keccak256(keys), "guardianSets +0: keys hash");
        uint256 tail = uint256(vm.load(address(km), bytes32(uint256(base) + 1)));
        vm.assertEq(_field(tail, 0, 1), 2, "+1 byte 0: threshold");
        vm.assertEq(_field(tail, 1, 1), 2, "+1 byte 1: count");
        vm.assertEq(_field(tail, 2, 8), block.timestamp, "+1 bytes 2-9: activatesAt");
        vm.assertEq(_nested(bytes32(uint256(set)), bytes32(uint256(uint160(vm.addr(0x6002)))), 22), 2, "slot 22: index");

        bytes memory commitments = abi.encodePacked(_pubkey33(MASTER_PK), _pubkey33(0xC1));
        bytes[] memory shares = new bytes[](2);
        shares[0] = "one";
        shares[1] = "two";
        bytes32 structHash = _escrowStruct(1, set, commitments, shares);
        km.publishEscrow(1, set, commitments, shares, _sign(MASTER_PK, _typed(structHash)));
        bytes32 g1 = keccak256(abi.encode(uint256(1), uint256(11)));
        vm.assertEq(vm.load(address(km), bytes32(uint256(g1) + 3)), structHash, "generations[1] +3: escrow hash");
        vm.assertEq(_field(uint256(vm.load(address(km), bytes32(uint256(g1) + 4))), 0, 8), set, "+4: escrow set");

        uint256 enclave = _request(NEWCOMER_PK);
        vm.prank(owner);
        km.startRecovery(enclave);
        vm.assertEq(_slot(23), enclave, "slot 23: recovery request");
        bytes memory share = "share";
        km.releaseShare(enclave, 1, share, _sign(0x6002, _releaseDigest(enclave, 1, share)));
        vm.assertEq(_nested(bytes32(enclave), bytes32(uint256(1)), 24), 1 << 2, "slot 24: released bit set");
    }
}
