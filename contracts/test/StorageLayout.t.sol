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
        vm.assertEq(_field(word, 29, 3), 0, "slot 2 bytes 29-31: unused");
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
        vm.assertEq(_field(word, 20, 8), expiresAt, "+0 bytes 20-27: expiresAt");
        vm.assertEq(_field(word, 28, 1), status, "+0 byte 28: status");
        vm.assertEq(vm.load(address(km), bytes32(uint256(base) + 1)), commitment, "+1: commitment");
        _fulfill(_ids(id));
        vm.assertEq(_field(uint256(vm.load(address(km), base)), 28, 1), 2, "status after fulfil");
    }

    function test_StorageLayout_FreshnessMarks() public {
        bytes32 mark = keccak256("mark");
        km.markFresh(mark);
        vm.assertEq(_entry(mark, 10), block.number, "slot 10: freshness mark block");
    }
}
