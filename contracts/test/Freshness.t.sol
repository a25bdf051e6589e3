// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {KeyManagerFixture} from "./utils/KeyManagerFixture.sol";
import {Vm} from "./utils/Test.sol";
import {IKeyManager} from "../src/IKeyManager.sol";

/// @notice markFresh / freshnessMarkedAt (docs/protocol.md#verified-chain-view): the block of a mark's first recording.
contract FreshnessTest is KeyManagerFixture {
    bytes32 internal constant MARK = keccak256("node decision 1");

    function test_MarkFresh() public {
        testFuzz_MarkFresh(MARK, stranger, 1234);
    }

    function testFuzz_MarkFresh(bytes32 mark, address sender, uint64 blockNumber) public {
        vm.assume(blockNumber != 0);
        vm.roll(blockNumber);
        vm.assertEq(km.freshnessMarkedAt(mark), 0, "unmarked");
        vm.expectEmit(address(km));
        emit IKeyManager.FreshnessMarked(mark, sender);
        vm.prank(sender);
        vm.assertEq(km.markFresh(mark), blockNumber, "returns the block");
        vm.assertEq(km.freshnessMarkedAt(mark), blockNumber, "stored");
    }

    function test_MarkFresh_NoBlobNoBootstrapNeeded() public {
        _clearBlobs();
        vm.assertEq(km.generation(), 0, "not bootstrapped");
        vm.assertEq(km.markFresh(MARK), block.number, "recorded");
    }

    function test_MarkFresh_AgainKeepsFirstBlockSilently() public {
        uint256 first = block.number;
        km.markFresh(MARK);
        vm.roll(first + 50);
        vm.recordLogs();
        vm.prank(stranger);
        vm.assertEq(km.markFresh(MARK), first, "first block returned");
        Vm.Log[] memory logs = vm.getRecordedLogs();
        vm.assertEq(logs.length, 0, "no event for a repeat");
        vm.assertEq(km.freshnessMarkedAt(MARK), first, "first block kept");
    }

    function test_MarkFresh_MarksAreIndependent() public {
        km.markFresh(MARK);
        vm.roll(block.number + 7);
        bytes32 other = keccak256("node decision 2");
        km.markFresh(other);
        vm.assertEq(km.freshnessMarkedAt(MARK), block.number - 7, "first");
        vm.assertEq(km.freshnessMarkedAt(other), block.number, "second");
        vm.assertEq(km.freshnessMarkedAt(keccak256("never sent")), 0, "unsent");
    }
}
