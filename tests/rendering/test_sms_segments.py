"""SMS segment counting: GSM-7 and UCS-2 limits, extension characters, emoji."""

from __future__ import annotations

from rendering.sms import GSM_BASIC, GSM_EXTENSION, SmsSegments, count_segments


def test_empty_body_has_no_segments() -> None:
    assert count_segments("") == SmsSegments("GSM-7", 0, 0)


def test_160_gsm_characters_fit_one_segment() -> None:
    assert count_segments("a" * 160) == SmsSegments("GSM-7", 160, 1)


def test_161_gsm_characters_need_two_segments() -> None:
    assert count_segments("a" * 161) == SmsSegments("GSM-7", 161, 2)


def test_multipart_gsm_segments_hold_153_septets() -> None:
    assert count_segments("a" * 306).segments == 2
    assert count_segments("a" * 307).segments == 3


def test_extension_characters_count_two_septets() -> None:
    result = count_segments("€[]{}^~\\|")
    assert result == SmsSegments("GSM-7", 18, 1)


def test_extension_characters_push_over_160() -> None:
    assert count_segments("a" * 158 + "€") == SmsSegments("GSM-7", 160, 1)
    assert count_segments("a" * 159 + "€") == SmsSegments("GSM-7", 161, 2)


def test_escape_sequence_is_not_split_across_parts() -> None:
    # 152 septets then a 2-septet euro: it cannot straddle the 153 boundary.
    body = "a" * 152 + "€" + "a" * 10
    assert count_segments(body) == SmsSegments("GSM-7", 164, 2)
    # 306 septets would fill two parts exactly, but the euro starts part 2 and pushes one out.
    body = "a" * 152 + "€" + "a" * 152
    assert count_segments(body) == SmsSegments("GSM-7", 306, 3)


def test_gsm_accented_letters_stay_gsm7() -> None:
    assert count_segments("Café à Paris, Ça va Åsa? ¿Ñoño? Übung £5 ¥ §").encoding == "GSM-7"


def test_accented_letter_outside_gsm_forces_ucs2() -> None:
    assert count_segments("Málaga").encoding == "UCS-2"  # á is not in GSM 03.38


def test_gsm_basic_and_extension_tables_are_complete() -> None:
    assert len(GSM_BASIC) == 127  # 128 positions minus the escape
    assert len(GSM_EXTENSION) == 10
    assert "`" not in GSM_BASIC and "ç" not in GSM_BASIC and "Ç" in GSM_BASIC


def test_70_ucs2_characters_fit_one_segment() -> None:
    assert count_segments("ж" * 70) == SmsSegments("UCS-2", 70, 1)


def test_71_ucs2_characters_need_two_segments() -> None:
    assert count_segments("ж" * 71) == SmsSegments("UCS-2", 71, 2)


def test_multipart_ucs2_segments_hold_67_units() -> None:
    assert count_segments("ж" * 134).segments == 2
    assert count_segments("ж" * 135).segments == 3


def test_one_non_gsm_character_switches_the_whole_message_to_ucs2() -> None:
    # An en dash is outside GSM 03.38: all 70 characters become UCS-2 units, still one segment.
    assert count_segments("a" * 69 + "\u2013") == SmsSegments("UCS-2", 70, 1)
    assert count_segments("a" * 70 + "\u2013") == SmsSegments("UCS-2", 71, 2)


def test_emoji_counts_two_code_units() -> None:
    assert count_segments("☕") == SmsSegments("UCS-2", 1, 1)  # in the BMP
    assert count_segments("🎉") == SmsSegments("UCS-2", 2, 1)
    assert count_segments("a" * 68 + "🎉") == SmsSegments("UCS-2", 70, 1)
    assert count_segments("a" * 69 + "🎉") == SmsSegments("UCS-2", 71, 2)


def test_surrogate_pair_is_not_split_across_parts() -> None:
    body = "a" * 66 + "🎉" + "a" * 10
    assert count_segments(body) == SmsSegments("UCS-2", 78, 2)
    # 134 units would fill two parts exactly, but the pair cannot straddle the boundary.
    body = "a" * 66 + "🎉" + "a" * 66
    assert count_segments(body) == SmsSegments("UCS-2", 134, 3)


def test_segments_describe_themselves() -> None:
    assert str(count_segments("hi")) == "1 segment (GSM-7, 2 characters)"
    assert str(count_segments("a" * 161)) == "2 segments (GSM-7, 161 characters)"
