// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {KeyManagerFixture} from "./utils/KeyManagerFixture.sol";
import {KeyManager} from "../src/KeyManager.sol";
import {IKeyManager} from "../src/IKeyManager.sol";

/// @notice Constructor, two-step ownership, measurement allow-list, TCB policy, FMSPC allow-list, request lifetime.
contract GovernanceTest is KeyManagerFixture {
    // ------------------------------------------------------------ constructor

    function test_Constructor() public {
        vm.expectEmit();
        emit IKeyManager.OwnershipTransferred(address(0), owner);
        vm.expectEmit();
        emit IKeyManager.RequestTtlChanged(7200);
        vm.expectEmit();
        emit IKeyManager.TcbPolicyChanged(1, 30 days, false);
        KeyManager fresh = new KeyManager(owner, 3 days);

        vm.assertEq(fresh.owner(), owner, "owner");
        vm.assertEq(fresh.pendingOwner(), address(0), "pendingOwner");
        vm.assertEq(fresh.measurementDelay(), 3 days, "measurementDelay");
        vm.assertEq(fresh.requestTtl(), 7200, "requestTtl");
        vm.assertEq(fresh.requestCount(), 0, "requestCount");
        vm.assertEq(fresh.generation(), 0, "generation");
        vm.assertEq(fresh.xPub(), address(0), "xPub");
        vm.assertEq(fresh.masterPubkey(), "", "masterPubkey");
        vm.assertEq(fresh.bootstrapQuoteBlobHash(), bytes32(0), "bootstrapQuoteBlobHash");
        (uint16 statuses, uint64 age, bool allowlistOn) = fresh.tcbPolicy();
        vm.assertEq(statuses, 1, "statuses");
        vm.assertEq(age, 30 days, "age");
        vm.assertFalse(allowlistOn, "allow-list");
        vm.assertEq(fresh.minTcbEvaluationDataNumber(), 0, "minTcbEvaluationDataNumber");
        vm.assertEq(fresh.bootstrapper(), address(0), "bootstrapper");
    }

    function test_Constructor_MaxMeasurementDelay() public {
        vm.assertEq(new KeyManager(owner, 365 days).measurementDelay(), 365 days, "delay");
    }

    function test_RevertWhen_ConstructorOwnerIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerInvalidOwner.selector, address(0)));
        new KeyManager(address(0), 0);
    }

    function test_RevertWhen_ConstructorMeasurementDelayTooLong() public {
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerInvalidMeasurementDelay.selector, 365 days + 1));
        new KeyManager(owner, 365 days + 1);
    }

    // ------------------------------------------------------------ ownership

    function test_TransferOwnership() public {
        vm.expectEmit(address(km));
        emit IKeyManager.OwnershipTransferStarted(owner, stranger);
        vm.prank(owner);
        km.transferOwnership(stranger);
        vm.assertEq(km.owner(), owner, "owner unchanged until accepted");
        vm.assertEq(km.pendingOwner(), stranger, "pending");

        vm.expectEmit(address(km));
        emit IKeyManager.OwnershipTransferred(owner, stranger);
        vm.prank(stranger);
        km.acceptOwnership();
        vm.assertEq(km.owner(), stranger, "new owner");
        vm.assertEq(km.pendingOwner(), address(0), "pending cleared");

        // The former owner lost its rights.
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, owner));
        vm.prank(owner);
        km.setRequestTtl(10);
    }

    function test_TransferOwnership_ZeroCancels() public {
        vm.prank(owner);
        km.transferOwnership(stranger);
        vm.prank(owner);
        km.transferOwnership(address(0));
        vm.assertEq(km.pendingOwner(), address(0), "cancelled");
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        km.acceptOwnership();
    }

    function test_RevertWhen_TransferOwnershipByStranger() public {
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        km.transferOwnership(stranger);
    }

    function test_RevertWhen_AcceptOwnershipByNonPending() public {
        vm.prank(owner);
        km.transferOwnership(stranger);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, owner));
        vm.prank(owner);
        km.acceptOwnership();
    }

    // ------------------------------------------------------------ measurements

    function _tdxRaw(bytes1 fill) internal pure returns (bytes memory raw) {
        raw = new bytes(305);
        raw[0] = 0x01;
        for (uint256 i = 1; i < raw.length; ++i) {
            raw[i] = fill;
        }
    }

    function _sgxRaw(bytes32 mrenclave, bytes32 mrsigner, uint16 prodId, uint16 svn) internal pure returns (bytes memory) {
        return abi.encodePacked(uint8(2), mrenclave, mrsigner, prodId, svn);
    }

    function test_AddMeasurement_Tdx() public {
        bytes memory raw = _tdxRaw(0xab);
        bytes32 id = keccak256(raw);
        vm.expectEmit(address(km));
        emit IKeyManager.MeasurementAdded(id, uint64(block.timestamp), raw);
        vm.prank(owner);
        km.addMeasurement(id, raw);
        vm.assertTrue(km.isMeasurementAllowed(id), "allowed at once with delay 0");
        vm.assertEq(km.measurementActivatesAt(id), block.timestamp, "activatesAt");
    }

    function test_AddMeasurement_Sgx() public {
        testFuzz_AddMeasurement_Sgx(bytes32(uint256(1)), bytes32(uint256(2)), 3, 4);
    }

    function testFuzz_AddMeasurement_Sgx(bytes32 mrenclave, bytes32 mrsigner, uint16 prodId, uint16 svn) public {
        bytes memory raw = _sgxRaw(mrenclave, mrsigner, prodId, svn);
        vm.assertEq(raw.length, 69, "SGX preimage length");
        bytes32 id = keccak256(raw);
        vm.prank(owner);
        km.addMeasurement(id, raw);
        vm.assertTrue(km.isMeasurementAllowed(id), "allowed");
    }

    function test_AddMeasurement_ActivatesAfterDelay() public {
        KeyManager delayed = new KeyManager(owner, 1 days);
        bytes memory raw = _tdxRaw(0x01);
        bytes32 id = keccak256(raw);
        vm.expectEmit(address(delayed));
        emit IKeyManager.MeasurementAdded(id, uint64(block.timestamp + 1 days), raw);
        vm.prank(owner);
        delayed.addMeasurement(id, raw);
        vm.assertFalse(delayed.isMeasurementAllowed(id), "pending");
        vm.warp(block.timestamp + 1 days - 1);
        vm.assertFalse(delayed.isMeasurementAllowed(id), "one second early");
        vm.warp(block.timestamp + 1);
        vm.assertTrue(delayed.isMeasurementAllowed(id), "active");
    }

    function test_IsMeasurementAllowed_Unknown() public view {
        vm.assertFalse(km.isMeasurementAllowed(keccak256("nothing")), "unknown");
    }

    function test_RevertWhen_AddMeasurementByStranger() public {
        bytes memory raw = _tdxRaw(0x01);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        km.addMeasurement(keccak256(raw), raw);
    }

    function test_RevertWhen_AddMeasurementIdMismatch() public {
        testFuzz_RevertWhen_AddMeasurementIdMismatch(bytes32(0));
    }

    function testFuzz_RevertWhen_AddMeasurementIdMismatch(bytes32 id) public {
        bytes memory raw = _tdxRaw(0x02);
        vm.assume(id != keccak256(raw));
        vm.expectRevert(
            abi.encodeWithSelector(IKeyManager.KeyManagerMeasurementIdMismatch.selector, id, keccak256(raw))
        );
        vm.prank(owner);
        km.addMeasurement(id, raw);
    }

    function test_RevertWhen_AddMeasurementMalformed() public {
        _expectMalformed(0, 0, "");
        _expectMalformed(3, 305, abi.encodePacked(uint8(3), new bytes(304))); // unknown TEE type
        _expectMalformed(0, 69, new bytes(69));
        _expectMalformed(1, 304, abi.encodePacked(uint8(1), new bytes(303))); // TDX one byte short
        _expectMalformed(1, 306, abi.encodePacked(uint8(1), new bytes(305))); // TDX one byte long
        _expectMalformed(1, 69, abi.encodePacked(uint8(1), new bytes(68))); // TDX type with SGX length
        _expectMalformed(2, 68, abi.encodePacked(uint8(2), new bytes(67))); // SGX one byte short
        _expectMalformed(2, 70, abi.encodePacked(uint8(2), new bytes(69))); // SGX one byte long
        _expectMalformed(2, 305, abi.encodePacked(uint8(2), new bytes(304))); // SGX type with TDX length
    }

    function _expectMalformed(uint8 teeType, uint256 length, bytes memory raw) internal {
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerMalformedMeasurement.selector, teeType, length));
        vm.prank(owner);
        km.addMeasurement(keccak256(raw), raw);
    }

    function test_RevertWhen_AddMeasurementTwice() public {
        bytes memory raw = _tdxRaw(0x03);
        bytes32 id = keccak256(raw);
        vm.prank(owner);
        km.addMeasurement(id, raw);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerMeasurementAlreadyAdded.selector, id));
        vm.prank(owner);
        km.addMeasurement(id, raw);
    }

    function test_RemoveMeasurement() public {
        bytes memory raw = _tdxRaw(0x04);
        bytes32 id = keccak256(raw);
        vm.prank(owner);
        km.addMeasurement(id, raw);
        vm.expectEmit(address(km));
        emit IKeyManager.MeasurementRemoved(id);
        vm.prank(owner);
        km.removeMeasurement(id);
        vm.assertFalse(km.isMeasurementAllowed(id), "removed");
        vm.assertEq(km.measurementActivatesAt(id), 0, "cleared");
        // It can be listed again afterwards.
        vm.prank(owner);
        km.addMeasurement(id, raw);
        vm.assertTrue(km.isMeasurementAllowed(id), "re-added");
    }

    function test_RemoveMeasurement_PendingOne() public {
        KeyManager delayed = new KeyManager(owner, 1 hours);
        bytes memory raw = _tdxRaw(0x05);
        bytes32 id = keccak256(raw);
        vm.prank(owner);
        delayed.addMeasurement(id, raw);
        vm.prank(owner);
        delayed.removeMeasurement(id);
        vm.warp(block.timestamp + 1 hours);
        vm.assertFalse(delayed.isMeasurementAllowed(id), "never activates");
    }

    function test_RevertWhen_RemoveMeasurementUnknown() public {
        bytes32 id = keccak256("unknown");
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnknownMeasurement.selector, id));
        vm.prank(owner);
        km.removeMeasurement(id);
    }

    function test_RevertWhen_RemoveMeasurementByStranger() public {
        bytes memory raw = _tdxRaw(0x06);
        vm.prank(owner);
        km.addMeasurement(keccak256(raw), raw);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        km.removeMeasurement(keccak256(raw));
    }

    // ------------------------------------------------------------ TCB policy

    function test_SetTcbPolicy() public {
        testFuzz_SetTcbPolicy(0x3f, 7 days, true);
    }

    function testFuzz_SetTcbPolicy(uint16 statuses, uint64 age, bool allowlistOn) public {
        statuses = statuses & 0x3f;
        vm.assume(statuses != 0 && age != 0);
        vm.expectEmit(address(km));
        emit IKeyManager.TcbPolicyChanged(statuses, age, allowlistOn);
        vm.prank(owner);
        km.setTcbPolicy(statuses, age, allowlistOn);
        (uint16 s, uint64 a, bool on) = km.tcbPolicy();
        vm.assertEq(s, statuses, "statuses");
        vm.assertEq(a, age, "age");
        vm.assertTrue(on == allowlistOn, "allow-list");
    }

    function test_RevertWhen_SetTcbPolicyStatusesEmpty() public {
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerInvalidTcbStatuses.selector, uint16(0)));
        vm.prank(owner);
        km.setTcbPolicy(0, 1 days, false);
    }

    function test_RevertWhen_SetTcbPolicyStatusesBeyondBit5() public {
        testFuzz_RevertWhen_SetTcbPolicyStatusesBeyondBit5(0x40); // bit 6: what would be Revoked
    }

    function testFuzz_RevertWhen_SetTcbPolicyStatusesBeyondBit5(uint16 statuses) public {
        vm.assume(statuses & ~uint16(0x3f) != 0);
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerInvalidTcbStatuses.selector, statuses));
        vm.prank(owner);
        km.setTcbPolicy(statuses, 1 days, false);
    }

    function test_RevertWhen_SetTcbPolicyCollateralAgeZero() public {
        vm.expectRevert(IKeyManager.KeyManagerInvalidCollateralAge.selector);
        vm.prank(owner);
        km.setTcbPolicy(1, 0, false);
    }

    function test_RevertWhen_SetTcbPolicyByStranger() public {
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        km.setTcbPolicy(1, 1 days, false);
    }

    function test_SetMinTcbEvaluationDataNumber() public {
        testFuzz_SetMinTcbEvaluationDataNumber(17);
    }

    function testFuzz_SetMinTcbEvaluationDataNumber(uint32 minimum) public {
        vm.prank(owner);
        km.setTcbPolicy(0x3f, 7 days, true);
        vm.expectEmit(address(km));
        emit IKeyManager.MinTcbEvaluationDataNumberChanged(minimum);
        vm.prank(owner);
        km.setMinTcbEvaluationDataNumber(minimum);
        vm.assertEq(km.minTcbEvaluationDataNumber(), minimum, "minimum");
        // Packed beside the TCB policy: neither setter disturbs the other's fields.
        (uint16 statuses, uint64 age, bool allowlistOn) = km.tcbPolicy();
        vm.assertEq(statuses, 0x3f, "statuses kept");
        vm.assertEq(age, 7 days, "age kept");
        vm.assertTrue(allowlistOn, "allow-list kept");
        vm.prank(owner);
        km.setTcbPolicy(1, 1 days, false);
        vm.assertEq(km.minTcbEvaluationDataNumber(), minimum, "minimum kept");
    }

    function test_SetMinTcbEvaluationDataNumber_BackToZero() public {
        vm.assertEq(km.minTcbEvaluationDataNumber(), 0, "no minimum by default");
        vm.prank(owner);
        km.setMinTcbEvaluationDataNumber(type(uint32).max);
        vm.prank(owner);
        km.setMinTcbEvaluationDataNumber(0);
        vm.assertEq(km.minTcbEvaluationDataNumber(), 0, "lowered again");
    }

    function test_RevertWhen_SetMinTcbEvaluationDataNumberByStranger() public {
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        km.setMinTcbEvaluationDataNumber(17);
    }

    function test_SetFmspc() public {
        bytes6 fmspc = 0x00906ED50000;
        bytes6 other = 0x00A067110000;
        vm.assertTrue(km.isFmspcAllowed(other), "any FMSPC while the allow-list is off");

        vm.expectEmit(address(km));
        emit IKeyManager.FmspcSet(fmspc, true);
        vm.prank(owner);
        km.setFmspc(fmspc, true);
        vm.prank(owner);
        km.setTcbPolicy(1, 30 days, true);
        vm.assertTrue(km.isFmspcAllowed(fmspc), "listed");
        vm.assertFalse(km.isFmspcAllowed(other), "not listed");

        vm.expectEmit(address(km));
        emit IKeyManager.FmspcSet(fmspc, false);
        vm.prank(owner);
        km.setFmspc(fmspc, false);
        vm.assertFalse(km.isFmspcAllowed(fmspc), "unlisted");

        vm.prank(owner);
        km.setTcbPolicy(1, 30 days, false);
        vm.assertTrue(km.isFmspcAllowed(fmspc), "allow-list off again");
    }

    function test_RevertWhen_SetFmspcByStranger() public {
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        km.setFmspc(0x00906ED50000, true);
    }

    // ------------------------------------------------------------ request lifetime

    function test_SetRequestTtl() public {
        vm.expectEmit(address(km));
        emit IKeyManager.RequestTtlChanged(300);
        vm.prank(owner);
        km.setRequestTtl(300);
        vm.assertEq(km.requestTtl(), 300, "ttl");
        vm.prank(owner);
        km.setRequestTtl(type(uint32).max);
        vm.assertEq(km.requestTtl(), type(uint32).max, "max ttl");
    }

    function test_RevertWhen_SetRequestTtlZero() public {
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerInvalidRequestTtl.selector, uint64(0)));
        vm.prank(owner);
        km.setRequestTtl(0);
    }

    function test_RevertWhen_SetRequestTtlTooLong() public {
        uint64 ttl = uint64(type(uint32).max) + 1;
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerInvalidRequestTtl.selector, ttl));
        vm.prank(owner);
        km.setRequestTtl(ttl);
    }

    function test_RevertWhen_SetRequestTtlByStranger() public {
        vm.expectRevert(abi.encodeWithSelector(IKeyManager.KeyManagerUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        km.setRequestTtl(10);
    }
}
