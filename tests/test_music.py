"""Tests of the music chapter: encoding round trips, split, baselines, model causality, sampling, audio, MIDI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aigc_lessons import music
from aigc_lessons.checks.music import check_bigram, reference_bigram
from aigc_lessons.models import MODEL_CLASSES, MelodyLSTM

music21 = pytest.importorskip("music21")
from music21 import chord, key, note, stream, tie  # noqa: E402


def _melody_stream(*events):
    """A music21 stream of (pitch name or None, quarter length) events."""
    part = stream.Stream()
    for name, length in events:
        part.append(note.Rest(quarterLength=length) if name is None else note.Note(name, quarterLength=length))
    return part


# ----------------------------------------------------------------------------- encoding
def test_encode_known_tokens():
    tokens = music.encode_stream(_melody_stream(("C5", 1), ("D5", 0.5), (None, 0.5), ("B4", 0.25)))
    names = [music.token_name(t) for t in tokens]
    assert names == ["<start>", "C5", "hold", "hold", "hold", "D5", "hold", "rest", "hold", "B4", "<end>"], names


def test_round_trip_events_to_tokens_and_back():
    events = [(72, 4), (74, 2), (None, 2), (71, 1), (69, 7)]
    tokens = music.encode_notes(events)
    decoded = [(midi, steps) for midi, _, steps in music.melody_events(tokens)]
    assert decoded == events, f"decode(encode(x)) must give x back, got {decoded}"


def test_round_trip_through_music21_stream():
    tokens = music.encode_notes([(67, 4), (72, 2), (71, 2), (None, 4), (69, 8)])
    again = music.encode_stream(music.tokens_to_stream(tokens))
    assert again.tolist() == tokens.tolist(), "tokens -> music21 stream -> tokens changed the melody"


def test_ties_chords_grace_notes_and_leading_rests():
    part = stream.Stream()
    part.append(note.Rest(quarterLength=1))              # leading rest: dropped
    first, second = note.Note("E5", quarterLength=1), note.Note("E5", quarterLength=1)
    first.tie, second.tie = tie.Tie("start"), tie.Tie("stop")
    part.append([first, second])                          # one E5 of two quarters
    part.append(chord.Chord(["C4", "G4"], quarterLength=1))  # highest pitch kept
    grace = note.Note("A4").getGrace()
    part.append(grace)                                    # no duration: dropped
    part.append(note.Rest(quarterLength=1))               # trailing rest: dropped
    notes = music.melody_notes(music.encode_stream(part))
    assert notes == [(76, 0, 8), (67, 8, 4)], notes


def test_transposition_to_c_major_and_a_minor():
    assert music.transposition_to_c(key.Key("C")) == 0
    assert music.transposition_to_c(key.Key("G")) == 5          # G -> C: up a fourth (not down a fifth)
    assert music.transposition_to_c(key.Key("F")) == -5         # F -> C: down a fourth
    assert music.transposition_to_c(key.Key("e")) == 5          # E minor -> A minor
    assert music.transposition_to_c(key.Key("d")) == -5         # D minor -> A minor
    assert music.transposition_to_c(key.Key("F#")) == 6
    melody = music.encode_stream(_melody_stream(("G4", 1), ("B4", 1), ("D5", 1)), transpose=5)
    assert [m for m, _, _ in music.melody_notes(melody)] == [72, 76, 79], "G major triad moved to C major"


def test_clear_errors():
    with pytest.raises(music.MusicDataError, match="outside the vocabulary's range"):
        music.pitch_token(30)
    with pytest.raises(music.MusicDataError, match="at least 1 step"):
        music.encode_notes([(60, 0)])
    with pytest.raises(music.MusicDataError, match="no notes"):
        music.encode_stream(_melody_stream((None, 2)))
    with pytest.raises(music.MusicDataError, match="no part named 'Soprano'"):
        score = stream.Score([stream.Part(id="Bass")])
        music.soprano_part(score)
    with pytest.raises(ValueError, match="sum to 1"):
        music.total_variation(np.array([0.5, 0.6]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="at least one note"):
        music.pitch_class_histogram([music.encode_notes([(None, 4)])])


def test_missing_music21_is_explained(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_music21(name, *args, **kwargs):
        if name == "music21":
            raise ImportError("No module named 'music21'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_music21)
    with pytest.raises(music.MusicDataError, match="needs the music21 package"):
        music.chorale_paths(1)


# ----------------------------------------------------------------------------- corpus and split
def test_corpus_subset_encodes_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("AIGC_LESSONS_CACHE", str(tmp_path))
    first = music.load_chorale_melodies(limit=3)
    assert len(first) + first.duplicates + len(first.skipped) == 3
    assert not first.from_cache and list((tmp_path / "music").glob("*.npz")), "the encoded corpus must be cached"
    second = music.load_chorale_melodies(limit=3)
    assert second.from_cache
    assert [m.tolist() for m in second.melodies] == [m.tolist() for m in first.melodies]
    assert second.names == first.names and second.transpositions == first.transpositions
    for melody in first.melodies:
        assert melody[0] == music.START and melody[-1] == music.END
        assert music.melody_notes(melody), "every encoded chorale has notes"


def test_split_is_by_whole_melody_and_deterministic():
    rng = np.random.default_rng(0)
    melodies = [music.encode_notes([(int(p), 2) for p in rng.integers(60, 80, size=12)]) for _ in range(200)]
    train, validation = music.split_melodies(melodies)
    assert len(train) + len(validation) == 200
    assert 5 <= len(validation) <= 40, f"about 10% should be validation, got {len(validation)}"
    train_keys = {m.tobytes() for m in train}
    assert not any(m.tobytes() in train_keys for m in validation), "a melody must never be on both sides"
    # the decision depends on the melody only, not on which other melodies are loaded
    assert music.split_melodies(melodies[:50])[1] == [m for m in validation if any(m is x for x in melodies[:50])]
    duplicate = melodies[0].copy()
    assert music.is_validation(duplicate) == music.is_validation(melodies[0])


def test_pad_melodies_targets_are_shifted_inputs():
    melodies = [music.encode_notes([(60, 2)]), music.encode_notes([(62, 1), (64, 1), (65, 1)])]
    inputs, targets = music.pad_melodies(melodies)
    assert inputs.shape == targets.shape == (2, 4)
    assert targets[0].tolist() == [music.pitch_token(60), music.HOLD, music.END, -100]
    assert inputs[1, 1:].tolist() == targets[1, :-1].tolist(), "targets are the inputs shifted by one"


# ----------------------------------------------------------------------------- baselines and likelihoods
def test_bigram_known_answer_and_agrees_with_check_reference():
    melodies = [np.array([0, 1, 0]), np.array([0, 1, 1])]
    bigram = music.NGramModel(order=2, alpha=0.0, vocab_size=2).fit(melodies)
    np.testing.assert_allclose(bigram.distribution((0,)), [0.0, 1.0])
    np.testing.assert_allclose(bigram.distribution((1,)), [0.5, 0.5])
    smoothed = music.NGramModel(order=2, alpha=0.3, vocab_size=2).fit(melodies)
    expected = reference_bigram(melodies, 2, 0.3)
    for previous in (0, 1):
        np.testing.assert_allclose(smoothed.distribution((previous,)), expected[previous])


def test_unigram_cross_entropy_is_entropy_of_frequencies():
    melodies = [np.array([0, 2, 3, 3, 1])]  # predicted tokens 2, 3, 3, 1: frequencies 1/4, 1/2, 1/4
    unigram = music.NGramModel(order=1, alpha=0.0, vocab_size=4).fit(melodies)
    cross_entropy, perplexity = music.cross_entropy_and_perplexity(*unigram.log_likelihood(melodies))
    entropy = -(0.25 * math.log(0.25) * 2 + 0.5 * math.log(0.5))
    assert cross_entropy == pytest.approx(entropy)
    assert perplexity == pytest.approx(math.exp(entropy))


def test_uniform_model_has_perplexity_vocab_size():
    class Uniform(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def forward(self, tokens, state=None, return_state=False):
            return torch.zeros(*tokens.shape, music.VOCAB_SIZE)

    melodies = [music.encode_notes([(60, 3), (62, 1)]), music.encode_notes([(64, 2)])]
    total, count = music.model_log_likelihoods(Uniform(), melodies)
    assert count == sum(len(m) - 1 for m in melodies)
    assert music.cross_entropy_and_perplexity(total, count)[1] == pytest.approx(music.VOCAB_SIZE)


# ----------------------------------------------------------------------------- model and sampling
def test_model_shapes_registry_and_input_checks():
    assert MODEL_CLASSES["MelodyLSTM"] is MelodyLSTM
    model = MelodyLSTM(vocab_size=music.VOCAB_SIZE, embed_dim=8, hidden=16, layers=2)
    logits = model(torch.zeros(3, 7, dtype=torch.long))
    assert logits.shape == (3, 7, music.VOCAB_SIZE)
    with pytest.raises(ValueError, match="tokens must lie in"):
        model(torch.full((1, 2), music.VOCAB_SIZE, dtype=torch.long))
    with pytest.raises(ValueError, match="integers"):
        model(torch.zeros(1, 2))


def test_model_is_causal():
    torch.manual_seed(0)
    model = MelodyLSTM(vocab_size=music.VOCAB_SIZE, embed_dim=8, hidden=16, layers=2).eval()
    tokens = torch.randint(0, music.VOCAB_SIZE, (2, 12))
    changed = tokens.clone()
    changed[:, 8] = (changed[:, 8] + 1) % music.VOCAB_SIZE
    before, after = model(tokens), model(changed)
    assert torch.equal(before[:, :8], after[:, :8]), "changing token 8 must not change the logits at positions < 8"
    assert not torch.allclose(before[:, 8:], after[:, 8:]), "it must change the logits from position 8 on"


def test_stepwise_state_matches_full_sequence():
    torch.manual_seed(0)
    model = MelodyLSTM(vocab_size=music.VOCAB_SIZE, embed_dim=8, hidden=16, layers=2).eval()
    tokens = torch.randint(0, music.VOCAB_SIZE, (1, 6))
    full = model(tokens)
    logits, state = model(tokens[:, :3], return_state=True)
    rest = model(tokens[:, 3:], state=state)
    torch.testing.assert_close(torch.cat([logits, rest], dim=1), full)


def test_temperature_probabilities():
    logits = torch.tensor([[1.0, 3.0, 2.0]])
    torch.testing.assert_close(music.temperature_probabilities(logits, 1.0), torch.softmax(logits, -1))
    assert music.temperature_probabilities(logits, 0.0).tolist() == [[0.0, 1.0, 0.0]]
    hot = music.temperature_probabilities(logits, 100.0)
    assert torch.allclose(hot, torch.full_like(hot, 1 / 3), atol=0.01), "a high temperature flattens the distribution"
    with pytest.raises(ValueError, match="temperature"):
        music.temperature_probabilities(logits, -1.0)


def test_sampling_respects_vocabulary_and_greedy_is_argmax():
    torch.manual_seed(0)
    model = MelodyLSTM(vocab_size=music.VOCAB_SIZE, embed_dim=8, hidden=16, layers=1)
    melodies = music.sample_melodies(model, count=4, max_steps=30, temperature=1.0, seed=1)
    assert len(melodies) == 4
    for melody in melodies:
        assert melody[0] == music.START and music.START not in melody[1:]
        assert ((0 <= melody) & (melody < music.VOCAB_SIZE)).all() and len(melody) <= 30
        assert music.END not in melody[:-1], "a melody stops at its first <end>"
    assert [m.tolist() for m in music.sample_melodies(model, 4, 30, 1.0, seed=1)] == [m.tolist() for m in melodies]
    prompt = music.encode_notes([(72, 2), (74, 2)])[1:-1]
    prompted = music.sample_melodies(model, count=2, max_steps=20, temperature=1.0, seed=2, prompt=prompt)
    assert all(m[1 : 1 + len(prompt)].tolist() == prompt.tolist() for m in prompted), "a prompt is kept as given"
    greedy = music.sample_melodies(model, count=2, max_steps=10, temperature=0.0, seed=5)[0]
    with torch.no_grad():
        logits = model(torch.as_tensor(greedy[:-1]).unsqueeze(0))[0]
    logits[:, music.START] = -math.inf
    assert logits.argmax(-1).tolist() == greedy[1:].tolist(), "temperature 0 must pick the argmax at every step"


def test_training_lowers_the_loss():
    torch.manual_seed(0)
    melodies = [music.encode_notes([(60, 2), (62, 2), (64, 2), (65, 2), (67, 4)])] * 8
    model = MelodyLSTM(vocab_size=music.VOCAB_SIZE, embed_dim=8, hidden=32, layers=1, dropout=0.0)
    before = music.cross_entropy_and_perplexity(*music.model_log_likelihoods(model, melodies))[0]
    music.train_melody_model(model, melodies, epochs=120, batch_size=8, lr=3e-2, progress=False, validation=melodies)
    after = music.cross_entropy_and_perplexity(*music.model_log_likelihoods(model, melodies))[0]
    assert after < 0.3 * before, f"training on one repeated melody must fit it: {before:.3f} -> {after:.3f}"


# ----------------------------------------------------------------------------- statistics
def test_histograms_and_total_variation_known_answers():
    melody = music.encode_notes([(60, 1), (64, 2), (67, 1), (72, 4)])
    histogram = music.pitch_class_histogram([melody])
    assert histogram[0] == pytest.approx(0.5) and histogram[4] == pytest.approx(0.25)
    assert histogram.sum() == pytest.approx(1)
    intervals = music.interval_histogram([melody])
    assert [intervals[music.MAX_INTERVAL + k] for k in (3, 4, 5)] == pytest.approx([1 / 3] * 3)  # +4, +3, +5
    durations = music.duration_histogram([melody])
    assert durations[0] == pytest.approx(0.5) and durations[3] == pytest.approx(0.25)
    assert music.total_variation(histogram, histogram) == 0.0
    assert music.total_variation(np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5])) == pytest.approx(0.5)
    # transposing by an octave keeps the pitch-class histogram
    octave = music.encode_notes([(72, 1), (76, 2), (79, 1), (84, 4)])
    assert music.total_variation(histogram, music.pitch_class_histogram([octave])) == pytest.approx(0.0)


def test_longest_shared_run():
    reference = [music.encode_notes([(60, 1), (62, 1), (64, 1), (65, 1), (67, 1)])]
    index = music.note_ngram_index(reference, longest=8)
    assert music.longest_shared_run(music.encode_notes([(62, 4), (64, 4), (65, 1), (71, 1)]), index) == 3
    assert music.longest_shared_run(music.encode_notes([(70, 1)]), index) == 0
    assert music.longest_shared_run(reference[0], index) == 5


# ----------------------------------------------------------------------------- listening, looking, MIDI
def test_render_audio_is_finite_bounded_and_has_the_right_length():
    melody = music.encode_notes([(69, 4), (None, 4), (81, 8)])  # 4 beats at 60 bpm: 4 s
    audio = music.render_audio(melody, rate=8000, bpm=60)
    assert audio.dtype == np.float32 and audio.shape == (4 * 8000,)
    assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
    assert np.abs(audio[8000 + 200 : 2 * 8000 - 200]).max() == 0.0, "the rest must be silent"
    # the first note is A4: its strongest frequency is 440 Hz
    spectrum = np.abs(np.fft.rfft(audio[:8000]))
    assert abs(np.fft.rfftfreq(8000, 1 / 8000)[spectrum.argmax()] - 440) <= 2
    assert music.render_audio(melody, rate=8000, bpm=60, max_seconds=1.5).shape == (12000,)


def test_midi_file_is_written_and_read_back(tmp_path):
    melody = music.encode_notes([(72, 4), (74, 2), (76, 2), (None, 4), (71, 8)])
    path = music.write_midi(melody, tmp_path / "melody.mid")
    assert path.is_file() and path.read_bytes()[:4] == b"MThd", "a standard MIDI file starts with MThd"
    assert music.read_midi_notes(path) == music.melody_notes(melody)


def test_piano_roll_has_labelled_axes():
    import matplotlib

    matplotlib.use("Agg")
    axes = music.plot_piano_roll([music.encode_notes([(60, 4), (67, 4)])], labels=["test"])
    assert axes[-1].get_xlabel().startswith("time") and axes[0].get_ylabel() == "pitch"
    assert len(axes[0].collections) == 2


# ----------------------------------------------------------------------------- exercise check
def test_check_accepts_reference_and_rejects_wrong_answers():
    assert check_bigram(reference_bigram).passed
    transposed = check_bigram(lambda m, v, a: reference_bigram(m, v, a).T)
    assert not transposed.passed and "transposed" in " ".join(transposed.messages)
    unsmoothed = check_bigram(lambda m, v, a: reference_bigram(m, v, 0.0 if a else 1.0))
    assert not unsmoothed.passed and "smoothing" in " ".join(unsmoothed.messages)
    placeholder = check_bigram(lambda m, v, a: None)
    assert placeholder.status == "not attempted"
    crashing = check_bigram(lambda m, v, a: 1 / 0)
    assert not crashing.passed and "ZeroDivisionError" in " ".join(crashing.messages)


def test_recipe_is_registered():
    from aigc_lessons.recipes import RECIPES

    assert "music_lstm_bach" in RECIPES


def test_pretrained_melody_model_loads_and_its_card_beats_the_baselines():
    from aigc_lessons import pretrained

    if not pretrained.exists("music_lstm_bach"):
        pytest.skip("music_lstm_bach is not shipped in this checkout")
    model = pretrained.load("music_lstm_bach")
    metrics = pretrained.card("music_lstm_bach")["card"]["metrics"]
    ce = metrics["cross_entropy_nats_per_token"]
    assert ce["lstm"] < ce["8-gram"] < ce["1-gram"], f"the card's validation cross-entropies are out of order: {ce}"
    melodies = music.sample_melodies(model, count=3, max_steps=64, temperature=1.0, seed=0)
    assert all(len(music.melody_notes(m)) > 0 for m in melodies), "samples of the pretrained model contain notes"


@pytest.mark.slow
def test_recipe_runs_in_fast_mode():
    from aigc_lessons.recipes import retrain

    model = retrain("music_lstm_bach", fast=True, save=False, progress=False)
    assert isinstance(model, MelodyLSTM)
